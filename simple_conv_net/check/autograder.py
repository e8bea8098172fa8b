"""A Gradescope autograder for the checker, built by one command and run locally the way Gradescope runs it; the
same zip grades on PrairieLearn.

    python -m simple_conv_net.check autograder --rubric homework|FILE [--visibility V] [--data-dir DIR]
                                               [the checker's settings: --form, --timeout, --train-steps ...]
                                               [-o autograder.zip]
    python -m simple_conv_net.check run-autograder autograder.zip SUBMISSION [--results DIR] [--setup]
                                                   [--prairielearn]

The zip (:func:`build`) holds, at its root as Gradescope expects:

- ``setup.sh``: installs Python's pinned packages into a virtual environment (see the script);
- ``run_autograder``: grades ``/autograder/submission`` into ``/autograder/results/results.json``
  (``$AUTOGRADER_ROOT`` stands for /autograder elsewhere); ``run_prairielearn`` does the same for
  PrairieLearn's ``/grade`` (``$GRADE_ROOT``);
- ``config.json``: the checker's settings as given (checked when the zip is built), the default
  visibility of the tests, and the versions it was built with;
- ``rubric.json``, ``requirements.txt`` (every dependency pinned at the version installed here),
  ``wheels/`` (this project's wheel, built from its source tree), ``mnist/`` (the four files,
  checked against their MD5s: nothing downloads at grading time).

In the container both scripts run ``python -m simple_conv_net.check.autograder`` (:func:`grade`), which
finds the file in the upload (:mod:`.uploads`), checks that the MNIST files are there and whole, sizes
``--jobs`` and ``--memory-mb`` to the container (:mod:`.container`), checks the submission in this
process as the command does, and writes the platform's results (:mod:`.platforms`). A grading error
(missing data, a container too small, a checker error, a process killed by the out-of-memory killer, or
a report the checker marks not graded) writes no Gradescope score and exits 2, its reasons on stdout.

:func:`run_local` (``run-autograder``) unpacks the zip into a temporary tree laid out as Gradescope's
/autograder (source, submission, results) or PrairieLearn's /grade, runs ``setup.sh`` into a fresh
virtual environment with ``--setup`` (else the scripts run with this Python and the checker installed
in it), runs ``run_autograder`` as the platform does, keeps its output as Gradescope keeps
``results/stdout``, and prints the results.json path and a summary.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import zipfile
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import torch

from .. import data
from ..io import atomic_file, atomic_write_text
from . import cli, container, platforms, report as outputs
from .forms import FILES
from .grade import check
from .progress import Progress
from .rubric import VISIBILITIES, RubricError, find, load
from .servers import PROJECT_ROOT
from .targets import TargetError, resolve
from .uploads import SubmissionProblem, locate

SCRIPTS = Path(__file__).with_name("autograder_scripts")
CONFIG, RUBRIC, REQUIREMENTS, WHEELS, MNIST = "config.json", "rubric.json", "requirements.txt", "wheels", "mnist"
PROJECT = "simple-conv-net"
# Settings of the command that the autograder chooses itself, or that name outputs of a single run.
NOT_STORED = ("jobs", "memory_mb", "json", "gradescope", "feedback", "prairielearn", "batch", "out", "force")
PLATFORMS = {"gradescope": ("submission", "run_autograder"), "prairielearn": ("student", "run_prairielearn")}
SCRIPT_NAMES = ("setup.sh", "run_autograder", "run_prairielearn")


class AutograderError(RuntimeError):
    """The autograder cannot be built or run as asked: the message says why."""


class GradingError(RuntimeError):
    """A fault of the grader, not of the submission: no score is written."""


# ----------------------------------------------------------------------------- building the zip


def pinned_requirements() -> tuple[str, list[str]]:
    """(torch's version, ``name==version`` for every other package the project needs at run time, and those they
    need), at the versions installed here."""
    from packaging.requirements import Requirement     # matplotlib's requirement, so there wherever the project is
    from packaging.utils import canonicalize_name

    versions, queue = {}, [PROJECT]
    while queue:
        for text in importlib.metadata.requires(queue.pop()) or []:
            requirement = Requirement(text)
            name = canonicalize_name(requirement.name)
            if name in versions or (requirement.marker and not requirement.marker.evaluate({"extra": ""})):
                continue
            try:
                versions[name] = importlib.metadata.version(name)
            except importlib.metadata.PackageNotFoundError:
                raise AutograderError(f"{requirement} is required but not installed here, so its tested version is "
                                      f"unknown: install the project's requirements first") from None
            queue.append(name)
    torch = versions.pop("torch")
    return torch, [f"{name}=={version}" for name, version in sorted(versions.items())]


def build_wheel(into: Path) -> Path:
    """This project's wheel, built in ``into`` from a copy of its source tree (pyproject.toml, the README its
    metadata reads, and every package folder)."""
    if not (PROJECT_ROOT / "pyproject.toml").is_file():
        raise AutograderError(f"building the autograder needs this project's source tree (a clone, installed with "
                              f"pip install -e .); {PROJECT_ROOT} has no pyproject.toml")
    with tempfile.TemporaryDirectory(prefix="simple-conv-net-wheel-") as scratch:
        tree = Path(scratch) / "source"
        tree.mkdir()
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(PROJECT_ROOT / name, tree / name)
        for package in sorted(path.parent for path in PROJECT_ROOT.glob("*/__init__.py")):
            shutil.copytree(package, tree / package.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation, "--wheel-dir",
                   str(into), str(tree)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode:
            raise AutograderError(f"building the project's wheel failed ({' '.join(command)}):\n{done.stderr[-2000:]}")
    (wheel,) = into.glob("*.whl")
    return wheel


def mnist_files(data_dir) -> list[Path]:
    """The four MNIST files, each checked against the real file's MD5 (as grading will)."""
    try:
        for split in data.SPLITS:
            data.load_mnist(split, data_dir)
        return data.mnist_files(data_dir)
    except (data.MNISTNotFoundError, data.MNISTFormatError) as error:
        raise AutograderError(f"the autograder ships MNIST for the checks on real images and training: {error}") \
            from None


def _script(name: str, torch_version: str) -> str:
    version = sys.version_info
    text = (SCRIPTS / name).read_text()
    for key, value in {"@PYTHON_VERSION@": f"{version.major}.{version.minor}",
                       "@PYTHON_TUPLE@": f"{version.major}, {version.minor}", "@TORCH_VERSION@": torch_version}.items():
        text = text.replace(key, value)
    return text


def checker_settings(argv: list[str]) -> list[str]:
    """The checker's settings to store, checked by the command's own parser (SystemExit, as the command, on a
    mistake); AutograderError for one the container chooses or one that names an output."""
    options = [f"--{name.replace('_', '-')}" for name in NOT_STORED]
    for token in argv:          # as given, or abbreviated as argparse allows
        given = token.split("=", 1)[0]
        chosen = [option for option in options if len(given) > 2 and option.startswith(given)]
        if token.startswith("--") and chosen:
            raise AutograderError(f"{chosen[0]} is not an autograder setting: --jobs and --memory-mb are chosen in "
                                  f"the container from its CPUs and memory, and the outputs are the platform's")
    args = cli.parse_args(["SUBMISSION", *argv])
    if args.form in FILES:
        raise AutograderError(f"--form {FILES[args.form]}: an instructor's form file is not packed into the autograder "
                              f"zip (the container would not have it): grade with --batch, or give a built-in form")
    return list(argv)


def build(out, rubric: str, checker_args: list[str], visibility: str = "visible", data_dir=None) -> list[str]:
    """Write the autograder zip to ``out`` (atomically); the names it holds."""
    load(rubric)                                # RubricError if it is not a usable rubric
    torch_version, pins = pinned_requirements()
    version = sys.version_info
    config = {"checker_args": checker_args, "rubric": RUBRIC, "mnist": MNIST, "visibility": visibility,
              "built": {"project": importlib.metadata.version(PROJECT), "torch": torch_version,
                        "python": f"{version.major}.{version.minor}.{version.micro}",
                        "at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}}
    files = {name: _script(name, torch_version) for name in SCRIPT_NAMES} | {
        CONFIG: outputs.dumps(config), RUBRIC: find(rubric).read_text(), REQUIREMENTS: "\n".join(pins) + "\n"}
    with tempfile.TemporaryDirectory(prefix="simple-conv-net-autograder-") as scratch:
        wheel = build_wheel(Path(scratch))
        packed = {f"{WHEELS}/{wheel.name}": wheel} | {f"{MNIST}/{path.name}": path for path in mnist_files(data_dir)}
        with atomic_file(out) as (handle, _), zipfile.ZipFile(handle, "w") as archive:
            for name, text in files.items():
                info = zipfile.ZipInfo(name, time.localtime()[:6])
                info.external_attr = (0o755 if name in SCRIPT_NAMES else 0o644) << 16
                archive.writestr(info, text, compress_type=zipfile.ZIP_DEFLATED)
            for name, path in packed.items():      # already compressed: stored
                archive.write(path, name, compress_type=zipfile.ZIP_STORED)
    return [*files, *packed]


# ----------------------------------------------------------------------------- grading in the container


def _say(*lines: str) -> None:
    """A line of the log the instructor sees (Gradescope keeps stdout as results/stdout)."""
    print(*lines, sep="\n", flush=True)


def _check_mnist(folder: Path, train: bool) -> None:
    """GradingError unless the zip's MNIST files are there and whole (the training set only when training runs)."""
    try:
        for split in ("test", "train") if train else ("test",):
            data.load_mnist(split, folder)
    except (data.MNISTNotFoundError, data.MNISTFormatError) as error:
        raise GradingError(f"the autograder's MNIST files are missing or damaged: {error}") from None


def check_upload(folder: Path, config: dict, source: Path) -> dict:
    """Check the located submission as the command would, with the jobs, memory and threads this container allows;
    the report. GradingError for a fault of the grader's, SubmissionProblem for one of the upload's."""
    args = cli.parse_args([str(folder), *config["checker_args"], "--rubric", str(source / config["rubric"]),
                           "--data-dir", str(source / config["mnist"])])
    _check_mnist(source / config["mnist"], args.train_steps > 0)
    box = container.measure()
    try:
        sizing = container.plan(box)
    except container.TooSmall as error:
        raise GradingError(f"{error}: give the autograder more memory (Gradescope: the assignment's Autograder "
                           f"Settings), then rerun it") from None
    _say(sizing.describe(box))
    args.jobs, args.memory_mb = sizing.jobs, sizing.memory_mb
    options = cli.options_of(args)
    options = replace(options, limits=replace(options.limits, threads=sizing.threads))
    torch.set_num_threads(1)    # as the command: this process only judges, while the children compute
    try:
        target = resolve(args.target)
        kills = container.oom_kills()
        with cli.terminated_as_interrupted():
            result = check(target, options, load(args.rubric), Progress(sys.stdout, live=False))
    except TargetError as error:
        raise SubmissionProblem(str(error).replace(str(folder), "your submission")) from None
    except RubricError as error:
        raise GradingError(str(error)) from None
    rose = (container.oom_kills() or 0) - (kills or 0)
    if rose > 0:
        result = dict(result, grading_errors=[*result.get("grading_errors", []),
                                              f"the kernel's out-of-memory killer stopped {rose} process(es) of the "
                                              f"check: the container is smaller than it says"])
    return result


def _not_graded(reasons: list[str]) -> None:
    _say("NOT GRADED: a grading error, not a fault of the submission:", *(f"  - {text}" for text in reasons),
         "No score is recorded for it (Gradescope: no results.json, so the submission shows that the autograder "
         "failed; PrairieLearn: not gradable, no attempt counted). Fix the cause, then rerun the autograder on it.")


def _config(source: Path) -> dict:
    try:
        return json.loads((source / CONFIG).read_text())
    except (OSError, ValueError) as error:
        raise GradingError(f"the autograder's {CONFIG} cannot be read: {error}") from None


def grade(platform: str, source: Path, upload: Path, results: Path) -> int:
    """Grade the upload in a platform's container; 0 when results.json was written with a score (or, for an upload
    holding nothing to grade, what to rename), 2 for a grading error (see the module's doc)."""
    start = time.monotonic()
    results.mkdir(parents=True, exist_ok=True)
    out = results / "results.json"
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="simple-conv-net-upload-") as work:
        try:
            config = _config(source)
            located = locate(upload, Path(work))
            _say(f"grading {located.shown}")
            result = check_upload(located.folder, config, source)
            reasons = platforms.not_graded(result)
        except SubmissionProblem as problem:
            _say(f"nothing to grade: {problem}")
            document = platforms.gradescope_unusable(str(problem), time.monotonic() - start) \
                if platform == "gradescope" else platforms.prairielearn_unusable(str(problem))
            atomic_write_text(out, outputs.dumps(document))
            return 0
        except GradingError as error:
            reasons = [str(error)]
        except KeyboardInterrupt:
            _say("stopped: every child stopped, nothing written")
            return 143
        except Exception as error:  # noqa: BLE001 - a bug of the checker's: said as such, never a score
            _say("".join(traceback.format_exception(type(error), error, error.__traceback__)))
            reasons = [f"checker error: {type(error).__name__}: {error}"]
    if reasons:
        _not_graded(reasons)
        if platform == "prairielearn":
            atomic_write_text(out, outputs.dumps(platforms.prairielearn_not_graded(reasons)))
        return 2
    shown = dict(result, target=located.shown, seconds=time.monotonic() - start)
    document = platforms.gradescope(shown, config["visibility"], located.note) if platform == "gradescope" \
        else platforms.prairielearn(shown, located.note)
    atomic_write_text(out, outputs.dumps(document))
    _say(outputs.card(shown), f"results.json: score {result['score']:g} / {result['max_score']:g}")
    return 0


def container_main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simple_conv_net.check.autograder",
                                     description="Grade an upload in a platform's container (run_autograder and "
                                                 "run_prairielearn run this).")
    parser.add_argument("--platform", choices=list(PLATFORMS), required=True)
    parser.add_argument("--source", type=Path, required=True, help="the unpacked zip")
    parser.add_argument("--submission", type=Path, required=True, help="the student's upload")
    parser.add_argument("--results", type=Path, required=True, help="where results.json goes")
    args = parser.parse_args(argv)
    return grade(args.platform, args.source, args.submission, args.results)


# ----------------------------------------------------------------------------- running it locally


def _unpack_zip(archive: Path, into: Path) -> None:
    """The autograder zip in ``into``, its scripts executable (zipfile keeps no modes)."""
    try:
        with zipfile.ZipFile(archive) as opened:
            if any(name.startswith("/") or ".." in Path(name).parts for name in opened.namelist()):
                raise AutograderError(f"{archive}: a path in it leads outside the folder it unpacks into")
            opened.extractall(into)
    except (OSError, zipfile.BadZipFile) as error:
        raise AutograderError(f"{archive}: cannot be read as an autograder zip ({error})") from None
    for name in SCRIPT_NAMES:
        if not (into / name).is_file():
            raise AutograderError(f"{archive} has no {name} at its root: not an autograder zip of this checker")
        (into / name).chmod(0o755)


def _place(submission: Path, folder: Path) -> None:
    """The upload as the platform puts it: a file (a .zip too) in the folder, or a folder's files."""
    folder.mkdir(parents=True)
    if submission.is_dir():
        shutil.copytree(submission, folder, symlinks=True, dirs_exist_ok=True)
    elif submission.is_file():
        shutil.copy2(submission, folder / submission.name)
    else:
        raise AutograderError(f"SUBMISSION {submission}: no such file or folder")


def _run_logged(command: list, cwd: Path, env: dict, log: Path) -> tuple[int, float]:
    """(exit status, seconds) of ``command``, its stdout and stderr in ``log`` as well as on this stderr."""
    start = time.monotonic()
    with open(log, "wb") as sink:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for line in process.stdout:
            sink.write(line)
            sys.stderr.buffer.write(line)
            sys.stderr.flush()
        return process.wait(), time.monotonic() - start


def summarize(platform: str, path: Path) -> list[str]:
    """The results.json of a run, in a few lines (or what its absence means)."""
    if not path.is_file():
        return ["no results.json: not graded (a grading error, its reasons above). On Gradescope the submission "
                "shows that the autograder failed, with no score; you see the output and can rerun it."]
    document = json.loads(path.read_text())
    if platform == "prairielearn":
        lines = [f"gradable: {document.get('gradable', True)}, score {document.get('score', '-')}: "
                 f"{document.get('message', '')}"]
        return lines + [f"  {t['name']:<40}{t['points']:>7g} / {t['max_points']:g}" for t in document.get("tests", [])]
    lines = [f"score {document['score']:g} (execution_time {document.get('execution_time', '-')} s)"]
    lines += [f"  {t.get('number', '')} {t['name']:<40}{t['score']:>7g} / {t['max_score']:g}  {t.get('status', '')}"
              + (f"  ({t['visibility']})" if "visibility" in t else "") for t in document.get("tests", [])]
    return lines if document.get("tests") else lines + [f"  {document.get('output', '')}"]


def run_local(archive, submission, results=None, setup: bool = False, platform: str = "gradescope") -> int:
    """run-autograder (see the module's doc): 0 when results.json was written, 2 when it was not."""
    upload_name, script = PLATFORMS[platform]
    root = Path(tempfile.mkdtemp(prefix="autograder-root-"))
    try:
        source = root / "source"
        _unpack_zip(Path(archive), source)
        _place(Path(submission), root / upload_name)
        (root / "results").mkdir()
        env = dict(os.environ, AUTOGRADER_ROOT=str(root), GRADE_ROOT=str(root))
        for name in ("AUTOGRADER_VENV", "AUTOGRADER_PYTHON"):
            env.pop(name, None)
        timings = []
        if setup:
            status, seconds = _run_logged(["bash", str(source / "setup.sh")], source, env, root / "setup.log")
            timings.append(f"setup.sh {seconds:.0f} s")
            if status:
                raise AutograderError(f"setup.sh failed (exit status {status}); its output is above")
        else:
            env["AUTOGRADER_PYTHON"] = sys.executable
        runner = root / script
        if platform == "gradescope":        # Gradescope runs its copy, /autograder/run_autograder
            shutil.copy2(source / script, runner)
        else:
            runner = source / script
        status, seconds = _run_logged([str(runner)], root, env, root / "results" / "stdout")
        timings.append(f"{script} {seconds:.0f} s, exit status {status}")
        kept = Path(results) if results else Path(tempfile.mkdtemp(prefix="autograder-results-"))
        kept.mkdir(parents=True, exist_ok=True)
        for name in ("results.json", "stdout"):
            (kept / name).unlink(missing_ok=True)
            if (root / "results" / name).is_file():
                shutil.copy2(root / "results" / name, kept / name)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"run-autograder ({platform}): {'; '.join(timings)}", *summarize(platform, kept / "results.json"),
          f"results.json: {kept / 'results.json'}", f"its output (results/stdout, what the instructor sees): "
          f"{kept / 'stdout'}", sep="\n")
    return 0 if (kept / "results.json").is_file() else 2


# ----------------------------------------------------------------------------- the subcommands


def _build_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simple_conv_net.check autograder",
        description="Build a Gradescope autograder zip (also PrairieLearn's grader) that checks each submission.",
        epilog="Any other option is the checker's (--form, --timeout, --train-steps, --batch-sizes, ...): it is "
               "checked now, stored in the zip and passed to the checker in the container. --jobs and --memory-mb "
               "are chosen there from the container's CPUs and memory.")
    parser.add_argument("--rubric", required=True, metavar="NAME|FILE", help="homework or a rubric JSON file")
    parser.add_argument("--visibility", choices=VISIBILITIES, default="visible",
                        help="Gradescope's visibility of the tests (default: visible; a rubric item's own "
                             "\"visibility\" wins)")
    parser.add_argument("--data-dir", help="the MNIST files to pack (default: the project's data search)")
    parser.add_argument("-o", "--output", default="autograder.zip", metavar="FILE", help="default: autograder.zip")
    args, rest = parser.parse_known_args(argv)
    names = build(args.output, args.rubric, checker_settings(rest), args.visibility, args.data_dir)
    size = Path(args.output).stat().st_size
    print(f"wrote {args.output} ({size / 2 ** 20:.1f} MB): {', '.join(names)}",
          f"checker settings: {' '.join(rest) or '(the defaults)'}; rubric {args.rubric}; tests {args.visibility}",
          f"Give the autograder at least {container.PARENT_MB + container.CHILD_MB} MB of memory (a child per CPU "
          f"needs {container.CHILD_MB} MB more each). Try it first: python -m simple_conv_net.check run-autograder "
          f"{args.output} SUBMISSION", sep="\n")
    return 0


def _run_command(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m simple_conv_net.check run-autograder",
        description="Run an autograder zip on one submission, in a temporary tree laid out as Gradescope's "
                    "/autograder (or PrairieLearn's /grade), as the platform runs it.")
    parser.add_argument("zip", help="the autograder zip")
    parser.add_argument("submission", help="what a student uploads: a .py file, a folder, or a .zip")
    parser.add_argument("--results", metavar="DIR", help="where results.json and the log are kept (default: a new "
                                                        "temporary folder)")
    parser.add_argument("--setup", action="store_true", help="run setup.sh first, into a fresh virtual environment "
                                                             "(TORCH_INDEX_URL= to install torch as pip is set up "
                                                             "here); without it, this Python's checker runs")
    parser.add_argument("--prairielearn", action="store_true", help="run_prairielearn in a /grade tree")
    args = parser.parse_args(argv)
    return run_local(args.zip, args.submission, args.results, args.setup,
                     "prairielearn" if args.prairielearn else "gradescope")


COMMANDS = {"autograder": _build_command, "run-autograder": _run_command}


def main(argv: list[str]) -> int:
    """``autograder ...`` or ``run-autograder ...``: 2 with the message for a usage error."""
    try:
        return COMMANDS[argv[0]](argv[1:])
    except (AutograderError, RubricError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(container_main())

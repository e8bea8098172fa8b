"""The Gradescope autograder (python -m simple_conv_net.check autograder / run-autograder) and the platforms' formats.

One zip is built for the module, with a small rubric of the functional form (relu's values, and its gradient as a
hidden item) and small settings, so that a real run takes two children; every results.json written is held to the
platform's published format (platform_formats.py). The slow tests run the homework's rubric on check_corpus/good.py
and on good.py with a bug, and setup.sh into a fresh virtual environment.
"""

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest

from simple_conv_net import data
from simple_conv_net.check import autograder, cli, container, platforms, report, rubric, uploads
from simple_conv_net.check.container import Container

from check_helpers import CORPUS, compose
from platform_formats import gradescope_errors, prairielearn_errors

SETTINGS = ["--form", "functional", "--train-steps", "0", "--speed-repeats", "1", "--batch-sizes", "1", "4"]
SMALL_RUBRIC = {"name": "relu", "max_score": 3, "items": [
    {"name": "relu: values", "points": 2, "functions": ["relu"], "checks": ["values", "shape"]},
    {"name": "relu: gradient", "points": 1, "functions": ["relu"], "checks": ["gradient"], "visibility": "hidden"}]}
RELU = "import torch\n\n\ndef relu(input):\n    return {}\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The zip, built by the command, and its files unpacked as Gradescope's /autograder/source."""
    folder = tmp_path_factory.mktemp("autograder")
    (folder / "relu.json").write_text(json.dumps(SMALL_RUBRIC))
    path = folder / "autograder.zip"
    assert cli.main(["autograder", "--rubric", str(folder / "relu.json"), *SETTINGS, "-o", str(path)]) == 0
    source = folder / "source"
    autograder._unpack_zip(path, source)
    return path, source


def _grade(source: Path, tmp_path: Path, files: dict, platform="gradescope", capsys=None):
    """grade() in this process on an upload of ``files`` (name -> text or bytes): (exit status, results.json or
    None, what it printed)."""
    upload, results = tmp_path / "upload", tmp_path / "results"
    upload.mkdir(parents=True)
    for name, content in files.items():
        (upload / name).parent.mkdir(parents=True, exist_ok=True)
        (upload / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    status = autograder.grade(platform, source, upload, results)
    path = results / "results.json"
    printed = capsys.readouterr().out if capsys else ""
    return status, json.loads(path.read_text()) if path.is_file() else None, printed


def _zip_of(files: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


# ----------------------------------------------------------------------------- the zip


def test_the_zip_holds_what_gradescope_and_setup_need(built):
    path, source = built
    with zipfile.ZipFile(path) as archive:
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    assert modes["setup.sh"] == modes["run_autograder"] == modes["run_prairielearn"] == 0o755
    config = json.loads((source / "config.json").read_text())
    assert config["checker_args"] == SETTINGS and config["visibility"] == "visible"
    assert json.loads((source / "rubric.json").read_text()) == SMALL_RUBRIC
    pins = (source / "requirements.txt").read_text().split()
    assert pins and all("==" in pin for pin in pins) and any(pin.startswith("numpy==") for pin in pins)
    assert f"torch=={config['built']['torch']}" in (source / "setup.sh").read_text()
    (wheel,) = (source / "wheels").glob("simple_conv_net-*.whl")
    with zipfile.ZipFile(wheel) as packed:
        assert "simple_conv_net/check/autograder_scripts/run_autograder" in packed.namelist()
    shipped = sorted((source / "mnist").iterdir())
    assert [p.read_bytes() for p in shipped] == [p.read_bytes() for p in sorted(data.mnist_files(), key=lambda p: p.name)]


def test_settings_the_container_chooses_are_refused(tmp_path, capsys):
    assert cli.main(["autograder", "--rubric", "homework", "--jobs", "2", "-o", str(tmp_path / "a.zip")]) == 2
    assert "--jobs is not an autograder setting" in capsys.readouterr().err
    assert cli.main(["autograder", "--rubric", str(tmp_path / "none.json"), "-o", str(tmp_path / "a.zip")]) == 2
    assert not (tmp_path / "a.zip").exists()


# ----------------------------------------------------------------------------- a run as Gradescope runs it


def test_run_autograder_grades_a_zipped_folder_under_another_name(built, tmp_path, capsys):
    """A student's zip of a folder whose file has another name, with a bug (relu as abs): found, graded, every item a
    test with its diagnosis, the hidden item hidden, the log kept as Gradescope keeps it."""
    upload = tmp_path / "hw2.zip"
    upload.write_bytes(_zip_of({"hw2/my_ops.py": RELU.format("input.abs()"), "__MACOSX/hw2/._my_ops.py": "junk"}))
    assert cli.main(["run-autograder", str(built[0]), str(upload), "--results", str(tmp_path / "out")]) == 0
    printed = capsys.readouterr().out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert gradescope_errors(results) == []
    values, gradient = results["tests"]
    assert values["status"] == "failed" and values["score"] < values["max_score"] == 2
    assert "the absolute value instead of max(x, 0)" in values["output"]
    assert gradient["visibility"] == "hidden" and results["visibility"] == "visible"
    assert results["score"] == values["score"] + gradient["score"] < 3
    assert "hw2.zip: hw2/my_ops.py as simple_conv_net_func.py" in results["output"]
    log = (tmp_path / "out" / "stdout").read_text()
    assert "container:" in log and "--jobs" in log and "relu: fail" in log
    assert f"score {results['score']:g}" in printed and "relu: gradient" in printed


def test_run_autograder_grades_a_correct_file_as_prairielearn_runs_it(built, tmp_path, capsys):
    """The same zip as PrairieLearn's grader (run_prairielearn in a /grade tree): a correct relu earns the whole
    score, as a fraction."""
    (tmp_path / "simple_conv_net_func.py").write_text(RELU.format("input.clamp(min=0)"))
    assert cli.main(["run-autograder", str(built[0]), str(tmp_path / "simple_conv_net_func.py"), "--prairielearn",
                     "--results", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert prairielearn_errors(results) == [] and results["gradable"] and results["score"] == 1
    assert [(t["points"], t["max_points"]) for t in results["tests"]] == [(2, 2), (1, 1)]
    assert "relu                pass" in results["output"] and "gradable: True, score 1" in capsys.readouterr().out


# ----------------------------------------------------------------------------- uploads with nothing to grade


@pytest.mark.parametrize("files,words", [
    ({}, "no Python file (it is empty): upload simple_conv_net_func.py"),
    ({"homework.ipynb": "{}"}, "export it as a .py file"),
    ({"simple_conv_net_func.txt": "def relu(input): pass"}, "Rename simple_conv_net_func.txt to"),
    ({"a.py": RELU.format("input"), "b/b.py": RELU.format("input")}, "rename the one to grade simple_conv_net_func.py"),
    ({"notes.py": "x = 1\n", "more.py": "y = 2\n"}, "defines the homework's functions"),
])
def test_an_upload_with_nothing_to_grade_tells_the_student_what_to_do(built, tmp_path, capsys, files, words):
    status, results, _ = _grade(built[1], tmp_path / "gs", files, capsys=capsys)
    assert status == 0 and gradescope_errors(results) == [] and results["score"] == 0
    assert words in results["output"], results["output"]
    status, results, _ = _grade(built[1], tmp_path / "pl", files, "prairielearn", capsys)
    assert status == 0 and prairielearn_errors(results) == [] and results["gradable"] is False
    assert words in results["message"] and results["format_errors"] == [results["message"]]


# ----------------------------------------------------------------------------- grading errors: never a score


def test_missing_mnist_is_a_grading_error_not_a_score(built, tmp_path, capsys):
    source = tmp_path / "source"
    shutil.copytree(built[1], source, ignore=shutil.ignore_patterns("t10k-images*"))
    status, results, printed = _grade(source, tmp_path / "gs", {"simple_conv_net_func.py": RELU.format("input")},
                                      capsys=capsys)
    assert status == 2 and results is None
    assert "NOT GRADED" in printed and "MNIST files are missing or damaged" in printed
    status, results, _ = _grade(source, tmp_path / "pl", {"simple_conv_net_func.py": RELU.format("input")},
                                "prairielearn", capsys)
    assert status == 2 and prairielearn_errors(results) == [] and results["gradable"] is False
    assert "not your submission" in results["message"] and "MNIST" in results["message"]


def test_a_container_too_small_is_a_grading_error(built, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(container, "measure", lambda: Container(0.5, "cpu.max", 768, "memory.max"))
    status, results, printed = _grade(built[1], tmp_path, {"simple_conv_net_func.py": RELU.format("input")},
                                      capsys=capsys)
    assert status == 2 and results is None
    assert "the container has 768 MB of memory (memory.max)" in printed and "Autograder Settings" in printed


def test_a_checker_error_and_an_out_of_memory_kill_are_grading_errors(built, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in the checker")

    monkeypatch.setattr(autograder, "check", broken)
    status, results, printed = _grade(built[1], tmp_path / "bug", {"simple_conv_net_func.py": RELU.format("input")},
                                      capsys=capsys)
    assert status == 2 and results is None and "checker error: ZeroDivisionError: a bug in the checker" in printed
    kills = iter([3, 4])
    monkeypatch.setattr(container, "oom_kills", lambda: next(kills))
    monkeypatch.setattr(autograder, "check", lambda *args: _scored({"relu": "pass"}))
    status, results, printed = _grade(built[1], tmp_path / "oom", {"simple_conv_net_func.py": RELU.format("input")},
                                      capsys=capsys)
    assert status == 2 and results is None and "out-of-memory killer stopped 1 process(es)" in printed


# ----------------------------------------------------------------------------- the formats, from a report


def _scored(statuses: dict, items=None) -> dict:
    """A report of the functional form whose functions have these statuses, scored with the small rubric."""
    functions = {name: {"status": status, "diagnoses": [] if status == "pass" else ["<b>why</b>"], "notes": [],
                        "checks": [{"name": "values a", "passed": status == "pass", "detail": "max rel 1 < 2"},
                                   {"name": "gradient a", "passed": True, "detail": ""}],
                        "seconds": 1.0, "output": ""} for name, status in statuses.items()}
    result = {"target": "t.py", "form": "functional", "functions": functions, "epoch": {}, "notes": [],
              "seconds": 2.0}
    return report.rescore(result, rubric.parse(dict(SMALL_RUBRIC, items=items or SMALL_RUBRIC["items"]), "small"))


def test_gradescope_and_prairielearn_results_of_a_report(tmp_path):
    failed = _scored({"relu": "fail"})
    results = platforms.gradescope(failed, "after_due_date", "Graded a.py.")
    assert gradescope_errors(results) == []
    assert [t["number"] for t in results["tests"]] == ["1", "2"] and results["visibility"] == "after_due_date"
    assert [t["status"] for t in results["tests"]] == ["failed", "passed"]
    assert "&lt;b&gt;why&lt;/b&gt;" in results["tests"][0]["output"] and "<b>" not in json.dumps(results)
    assert "Graded a.py." in results["output"] and results["score"] == failed["score"] == 1
    learn = platforms.prairielearn(failed)
    assert prairielearn_errors(learn) == [] and learn["gradable"] and learn["score"] == pytest.approx(1 / 3)
    assert [(t["points"], t["max_points"]) for t in learn["tests"]] == [(0, 2), (1, 1)]
    assert gradescope_errors({"tests": [{"name": "no score"}]}) and prairielearn_errors({"score": 1.5})


# The report contract of the checker's grading errors (branch slowfair): "grading_errors", and items not graded.
NOT_GRADED = {
    "grading_errors": ({"grading_errors": ["MNIST is missing"]}, "MNIST is missing"),
    "an item not graded": ({"items": [dict(SMALL_RUBRIC["items"][0], graded=False, score=None,
                                           not_graded="training ran out of time")]},
                           "relu: values: not graded: training ran out of time"),
    "graded false": ({"graded": False}, "marked this report not graded"),
}


@pytest.mark.parametrize("case", NOT_GRADED)
def test_a_report_not_graded_gets_no_score(case, tmp_path):
    change, words = NOT_GRADED[case]
    result = _scored({"relu": "pass"})
    if "items" in change:
        result["rubric"] = dict(result["rubric"], items=change["items"])
    result.update({key: value for key, value in change.items() if key != "items"})
    assert any(words in reason for reason in platforms.not_graded(result))
    with pytest.raises(platforms.NotGraded):
        platforms.gradescope(result)
    paths = {name: tmp_path / f"{name}.json" for name in ("gradescope", "prairielearn")}
    report.write_outputs(result, gradescope_path=paths["gradescope"], prairielearn_path=paths["prairielearn"])
    assert not paths["gradescope"].exists()
    learn = json.loads(paths["prairielearn"].read_text())
    assert prairielearn_errors(learn) == [] and learn["gradable"] is False and words in learn["message"]


def test_todays_reports_of_checker_faults_are_not_graded():
    """Reports without the keys above: a checker error in a function, a child killed from outside, batch's report
    of a submission the checker failed on."""
    assert platforms.not_graded(_scored({"relu": "pass"})) == []
    result = _scored({"relu": "error"})
    result["functions"]["relu"]["diagnoses"] = ["checker error: KeyError: 'x': the checker could not analyse this"]
    assert platforms.not_graded(result) == ["relu: checker error: KeyError: 'x': the checker could not analyse this"]
    result["functions"]["relu"] |= {"status": "crashed", "diagnoses": [
        "killed by SIGKILL: killed from outside the checker (by the kernel's out-of-memory killer, perhaps)"]}
    assert "relu: killed by SIGKILL" in platforms.not_graded(result)[0]
    assert platforms.not_graded(dict(result, functions={}, notes=["checker error: OSError: x"], traceback="...")) == \
        ["checker error: OSError: x"]


def test_a_rubric_items_visibility_is_checked():
    items = [dict(SMALL_RUBRIC["items"][0], visibility="sometimes")]
    with pytest.raises(rubric.RubricError, match="'visibility' to be one of"):
        rubric.parse({"items": items}, "r.json")
    assert rubric.parse(SMALL_RUBRIC, "r.json").items[1].visibility == "hidden"


# ----------------------------------------------------------------------------- the container's size


@pytest.mark.parametrize("cpus,memory_mb,jobs,child_mb", [
    (0.5, 1536, 1, 836), (1, 1340, 1, 640), (2, 3072, 2, 1186), (4, 1536, 1, 836), (64, 524288, 64, 4096)])
def test_jobs_and_memory_fit_the_container(cpus, memory_mb, jobs, child_mb):
    sizing = container.plan(Container(cpus, "", memory_mb, ""))
    assert (sizing.jobs, sizing.memory_mb) == (jobs, child_mb)
    assert sizing.jobs * sizing.memory_mb + container.PARENT_MB <= memory_mb
    with pytest.raises(container.TooSmall, match="1340 MB in all"):
        container.plan(Container(0.5, "", 768, ""))


def _cgroup_tree(tmp_path: Path, version: str, files: dict) -> Path:
    """A /proc/self with this process in cgroup /grader, its files (name -> text) under the mount."""
    proc, mount = tmp_path / "proc", tmp_path / "cgroup"
    proc.mkdir(parents=True)
    if version == "v2":
        (proc / "cgroup").write_text("0::/grader\n")
        (proc / "mountinfo").write_text(f"30 23 0:26 / {mount} rw,nosuid - cgroup2 cgroup2 rw\n")
    else:
        (proc / "cgroup").write_text("4:memory:/grader\n3:cpu,cpuacct:/grader\n0::/\n")
        (proc / "mountinfo").write_text(f"35 31 0:32 / {mount}/memory rw - cgroup cgroup rw,memory\n"
                                        f"32 31 0:29 / {mount}/cpu rw - cgroup cgroup rw,cpu,cpuacct\n")
    for name, text in files.items():
        (mount / name).parent.mkdir(parents=True, exist_ok=True)
        (mount / name).write_text(text)
    return proc


def test_cpus_memory_and_oom_kills_are_read_from_cgroup_v2_and_v1(tmp_path):
    proc = _cgroup_tree(tmp_path / "v2", "v2", {"grader/cpu.max": "50000 100000\n", "grader/memory.max": "max\n",
                                                "memory.max": f"{3 << 30}\n", "grader/memory.events": "oom 2\noom_kill 1\n"})
    assert container.cpu_quota(proc)[0] == 0.5 and container.oom_kills(proc) == 1
    assert container.memory_limit(proc) == (3 << 30, f"cgroup v2 {tmp_path / 'v2' / 'cgroup' / 'memory.max'}")
    proc = _cgroup_tree(tmp_path / "v1", "v1", {"cpu/grader/cpu.cfs_quota_us": "200000", "cpu/grader/cpu.cfs_period_us":
                                                "100000", "memory/grader/memory.limit_in_bytes": str(1536 << 20),
                                                "memory/memory.limit_in_bytes": "9223372036854771712",
                                                "memory/grader/memory.oom_control": "oom_kill_disable 0\noom_kill 0\n"})
    assert container.cpu_quota(proc)[0] == 2 and container.memory_limit(proc)[0] == 1536 << 20
    assert container.oom_kills(proc) == 0
    assert container.cpu_quota(tmp_path / "nowhere") == (None, "no cgroup CPU quota (no cgroup file system)")


# ----------------------------------------------------------------------------- finding the file


def _upload(tmp_path: Path, files: dict) -> Path:
    folder = tmp_path / "upload"
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


@pytest.mark.parametrize("files,shown,renamed", [
    ({"simple_conv_net_func.py": RELU}, "simple_conv_net_func.py", False),
    ({"mine.py": RELU, "helpers.py": "x = 1\n"}, "mine.py", True),
    ({"notes.txt": "", "only.py": "syntax error ("}, "only.py", True),
    ({"hw/simple_conv_net_func.py": RELU, "hw/old/simple_conv_net_func.py": RELU}, "hw/simple_conv_net_func.py", False),
    ({"hw.zip": _zip_of({"hw/simple_conv_net_func.py": RELU, "../escape.py": RELU, "/abs.py": RELU})},
     "hw.zip: hw/simple_conv_net_func.py", False),
])
def test_the_file_is_found_as_students_upload_it(tmp_path, files, shown, renamed):
    located = uploads.locate(_upload(tmp_path, files), tmp_path / "work")
    assert located.shown == shown and (located.folder / "simple_conv_net_func.py").is_file()
    assert (located.note is not None and "as simple_conv_net_func.py" in located.note) == renamed
    assert not (tmp_path / "work" / "escape.py").exists() and not list(tmp_path.rglob("abs.py"))


def test_a_file_in_a_folder_too_large_to_copy_is_graded_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "COPY_LIMIT_MB", 0)
    located = uploads.locate(_upload(tmp_path, {"hw/mine.py": RELU, "hw/data.bin": b"x" * 2 ** 20}), tmp_path / "work")
    assert [path.name for path in located.folder.iterdir()] == ["simple_conv_net_func.py"]
    assert located.note == ("Graded hw/mine.py as simple_conv_net_func.py, the name the assignment asks for: name it so "
                            "next time, alone: its folder holds 1 MB, more than the 0 MB a submission may.")


def test_a_zip_too_large_or_broken_is_the_students_to_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(uploads, "UNPACK_LIMIT_MB", 0)
    with pytest.raises(uploads.SubmissionProblem, match="unpacks to more than 0 MB"):
        uploads.locate(_upload(tmp_path / "a", {"a.zip": _zip_of({"x.py": "x" * 100})}), tmp_path / "a" / "work")
    with pytest.raises(uploads.SubmissionProblem, match="b.zip cannot be unpacked"):
        uploads.locate(_upload(tmp_path / "b", {"b.zip": b"PK\x03\x04 not really"}), tmp_path / "b" / "work")


# ----------------------------------------------------------------------------- end to end, at the homework's rubric


@pytest.mark.slow
def test_the_homework_autograder_on_a_correct_and_a_broken_submission(tmp_path, capsys):
    """The command's own settings but 20 training steps, as Gradescope and as PrairieLearn run it: good.py earns
    everything, good.py with the kernel flipped loses task 2a with the diagnosis."""
    path = tmp_path / "autograder.zip"
    assert cli.main(["autograder", "--rubric", "homework", "--train-steps", "20", "-o", str(path)]) == 0
    good, broken = CORPUS / "good.py", compose("kernel_flipped", tmp_path / "class", "simple_conv_net_func")
    assert cli.main(["run-autograder", str(path), str(good), "--results", str(tmp_path / "good")]) == 0
    results = json.loads((tmp_path / "good" / "results.json").read_text())
    assert gradescope_errors(results) == [] and results["score"] == 100
    assert all(test["status"] == "passed" for test in results["tests"])
    assert cli.main(["run-autograder", str(path), str(broken), "--results", str(tmp_path / "broken")]) == 0
    results = json.loads((tmp_path / "broken" / "results.json").read_text())
    assert gradescope_errors(results) == [] and results["score"] < 100
    task_2a = next(test for test in results["tests"] if test["name"].startswith("Task 2a"))
    assert task_2a["status"] == "failed" and "the kernel is flipped" in task_2a["output"]
    assert cli.main(["run-autograder", str(path), str(broken), "--prairielearn", "--results",
                     str(tmp_path / "pl")]) == 0
    learn = json.loads((tmp_path / "pl" / "results.json").read_text())
    assert prairielearn_errors(learn) == [] and learn["score"] == pytest.approx(results["score"] / 100)


@pytest.mark.slow
def test_setup_installs_the_zip_into_a_fresh_venv_and_grades(built, tmp_path, monkeypatch, capsys):
    """setup.sh as Gradescope runs it: every pinned package, then run_autograder with the zip's own checker. torch
    comes from pip's configuration here (TORCH_INDEX_URL empty), PyTorch's CPU index on Gradescope."""
    monkeypatch.setenv("TORCH_INDEX_URL", "")
    (tmp_path / "simple_conv_net_func.py").write_text(RELU.format("input.clamp(min=0)"))
    assert cli.main(["run-autograder", str(built[0]), str(tmp_path / "simple_conv_net_func.py"), "--setup",
                     "--results", str(tmp_path / "out")]) == 0
    assert "run-autograder (gradescope): setup.sh " in capsys.readouterr().out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert gradescope_errors(results) == [] and results["score"] == 3

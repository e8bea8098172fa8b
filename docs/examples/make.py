"""Regenerate the example outputs in README.md and docs/ by running their commands.

    python docs/examples/make.py                 # every output (about 15 minutes on 2 cores)
    python docs/examples/make.py check-student   # those of one run
    python docs/examples/make.py --list

Each output in the pages sits between ``<!-- output: NAME -->`` and ``<!-- /output -->``; this script
runs the commands behind it in a scratch copy of the checkout (parity_tests/doc_pages.py: nothing is
left in the repository), takes the lines the page shows, and writes them back with a line naming the
command, the date and the machine. Run it after changing what a command prints, and commit the pages.
Timings in the outputs are of that run, on that machine: they vary from run to run.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(ROOT / "parity_tests")]

import doc_pages  # noqa: E402  (the pages' parser, shared with the tests)
from benchmarks.timing.machine import cpu_model, load_average  # noqa: E402


@dataclass
class Run:
    commands: list[str]            # run in order; what they print is the output
    needs: list[str] = field(default_factory=list)   # runs whose files this one uses (made first, not shown)
    exit: int = 0                  # the status the commands end with (1: the checker found failures)


@dataclass
class Region:
    run: str
    shown: Callable[[str], str]    # the lines of the run's output that the page shows


def whole(text: str) -> str:
    return text


def excerpt(*patterns: str) -> Callable[[str], str]:
    """The lines matching any of ``patterns`` (regular expressions), '...' where lines are left out."""
    def pick(text: str) -> str:
        lines, out, skipped = text.splitlines(), [], False
        for line in lines:
            if any(re.search(pattern, line) for pattern in patterns):
                out.append(line)
                skipped = False
            elif not skipped and out:
                out.append("...")
                skipped = True
        while out and out[-1] == "...":
            out.pop()
        return "\n".join(out) + "\n"
    return pick


def graded_twice(rows: int) -> Callable[[str], str]:
    """A batch graded twice: the first run's summary and the first ``rows`` rows of its gradebook, and the
    second run's summary line."""
    def pick(text: str) -> str:
        lines = text.splitlines()
        summaries = [i for i, line in enumerate(lines) if line.startswith("graded ")]
        first = lines[summaries[0]:summaries[0] + 2 + rows]
        return "\n".join(first + ["...", lines[summaries[1]]]) + "\n"
    return pick


def between(first: str, last: str) -> Callable[[str], str]:
    """The lines from the first matching ``first`` to the first after it matching ``last``."""
    def pick(text: str) -> str:
        lines = text.splitlines()
        start = next(i for i, line in enumerate(lines) if re.search(first, line))
        end = next(i for i in range(start, len(lines)) if re.search(last, lines[i]))
        return "\n".join(lines[start:end + 1]) + "\n"
    return pick


CLASS = "python parity_tests/check_helpers.py runs/class"
RUNS = {
    "class": Run([CLASS]),
    "parity-vector": Run(["python -m simple_conv_net.parity --impl vector"]),
    "parity-scalar": Run(["python -m simple_conv_net.parity --impl scalar"]),
    "check-student": Run(["python -m simple_conv_net.check runs/class/student00 --rubric homework "
                          "--feedback runs/feedback.md"], needs=["class"], exit=1),
    "check-only": Run(["python -m simple_conv_net.check runs/class/student00 --only conv2d_vector"],
                      needs=["class"], exit=1),
    "check-batch": Run(["python -m simple_conv_net.check --batch runs/class --rubric homework",
                        "python -m simple_conv_net.check --batch runs/class --rubric homework"], needs=["class"], exit=1),
    "check-vector-ops": Run(["python -m simple_conv_net.check vector_ops"]),
    "check-my-ops": Run(["python -m simple_conv_net.check docs/examples/my_ops.py"], exit=1),
    "benchmark": Run(["python benchmarks/epoch_timing.py"]),
    "train-log": Run(["python train.py --impl vector --epochs 1 --out runs/log-example"]),
}
REGIONS = {
    "readme-parity": Region("parity-vector", excerpt(r"^\s+tensor", r"^---", r"^forward conv ",
                                                     r"^grad +conv_layer.weight", r"passed, \d+ failed")),
    "readme-check-student": Region("check-student", excerpt(r"^function ", r"^conv2d_(scalar|vector) ",
                                                            r"! the kernel is flipped", r"^score ")),
    "readme-check-batch": Region("check-batch", graded_twice(rows=2)),
    "readme-benchmark": Region("benchmark", excerpt(r"^ANSWER")),
    "parity-scalar": Region("parity-scalar", whole),
    "check-student": Region("check-student", excerpt(
        r"^simple_conv_net.check: ", r"^$", r"^function ", r"^diff_mse ", r"^conv2d_scalar ", r"^conv2d_vector ",
        r"^training ", r"^conv2d_vector: fail", r"^  x values small random N=4:", r"^  ! the kernel is flipped",
        r"^relu_vector: pass", r"ReLU'\(0\)", r"^time per epoch", r"^rubric ", r"^  Task ", r"^score ")),
    "check-only": Region("check-only", whole),
    "check-batch": Region("check-batch", graded_twice(rows=6)),
    "check-vector-ops": Region("check-vector-ops", between(r"^simple_conv_net.check: ", r"^training ")),
    "check-my-ops": Region("check-my-ops", excerpt(r"^conv2d: fail", r"^  x type:", r"^  x values simple-net",
                                                   r"^  ! ")),
    "benchmark": Region("benchmark", whole),
    "train-log": Region("train-log", excerpt(r"^epoch 1 \[ +(640|1280)/")),
}


def machine() -> str:
    import numba
    import torch

    return (f"{cpu_model()}, {len(os.sched_getaffinity(0))} usable cores; "
            f"torch {torch.__version__}, numba {numba.__version__}")


def load() -> str:
    average = load_average()
    return f"{average[0]:.1f}" if average else "unknown"


def execute(name: str, checkout: Path, done: dict[str, tuple[str, str]]) -> tuple[str, str]:
    """The output of run ``name`` (and, first, of the runs it needs), in ``checkout``, with the scratch
    checkout's own path taken out of it (what the commands print relative to the repository), and the
    machine's load average over the run."""
    if name in done:
        return done[name]
    run = RUNS[name]
    for need in run.needs:
        execute(need, checkout, done)
    printed, before = [], load()
    for command in run.commands:
        print(f"$ {command}", file=sys.stderr, flush=True)
        result = subprocess.run(["bash", "-c", command], cwd=checkout, env=doc_pages.command_env(),
                                capture_output=True, text=True)
        if result.returncode not in (0, run.exit):
            raise SystemExit(f"{command!r} exited with {result.returncode}:\n{result.stderr[-2000:]}")
        printed.append(result.stdout)
    done[name] = "".join(printed).replace(f"{checkout}/", ""), f"load average {before} at the start, {load()} at the end"
    return done[name]


def caption(run: Run, when: str, where: str) -> str:
    commands = "; ".join(f"`{command}`" for command in run.commands)
    return (f"*Output of {commands}, {when}, on {where} (regenerate: `python docs/examples/make.py`; timings vary "
            f"with the machine and its load).*")


def rewrite(page: Path, made: dict[str, str]) -> None:
    """Replace the regions of ``page`` named in ``made``; written to a temporary name, then renamed."""
    text = page.read_text()

    def region(match):
        name = match["name"]
        if name not in made:
            return match[0]
        return f"<!-- output: {name} -->\n{made[name]}<!-- /output -->"

    new = doc_pages.OUTPUT.sub(region, text)
    if new != text:
        temporary = page.with_name(f".{page.name}.tmp")
        temporary.write_text(new)
        temporary.replace(page)
        print(f"wrote {doc_pages.name(page)}", file=sys.stderr)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", metavar="RUN", help=f"runs to make (default: all): {', '.join(RUNS)}")
    parser.add_argument("--list", action="store_true", help="list the runs and the regions they fill")
    args = parser.parse_args(argv)
    if args.list:
        for name, run in RUNS.items():
            regions = [region for region, r in REGIONS.items() if r.run == name]
            print(f"{name}: {'; '.join(run.commands)}  ->  {', '.join(regions) or '(used by other runs)'}")
        return 0
    unknown = set(args.runs) - set(RUNS)
    if unknown:
        parser.error(f"unknown runs {sorted(unknown)}; --list shows them")
    wanted = [r for r in REGIONS if REGIONS[r].run in (args.runs or RUNS)]
    when, where = datetime.date.today().isoformat(), machine()
    made, done = {}, {}
    with tempfile.TemporaryDirectory() as scratch:
        checkout = doc_pages.mirror(Path(scratch))
        for region in wanted:
            run = RUNS[REGIONS[region].run]
            output, loaded = execute(REGIONS[region].run, checkout, done)
            made[region] = f"```text\n{REGIONS[region].shown(output)}```\n{caption(run, when, f'{where}, {loaded}')}\n"
    for page in doc_pages.pages():
        rewrite(page, made)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers of the checker's tests: the corpus of submissions, and the checker's steps run in this process.

Also a script: ``python parity_tests/check_helpers.py DIR`` writes a class of twelve submissions into DIR
(DIR/student00/simple_conv_net_func.py ...), each good.py with one bug of the corpus, to try the checker on.
"""

import contextlib
import importlib.util
import itertools
import os
import sys
from pathlib import Path

import pytest

from simple_conv_net.check import analysis, forkserver, forms, grade, plans, runner, servers

CORPUS = Path(__file__).parent / "check_corpus"
QUICK = grade.Options(plans.Settings(batch_sizes=(1, 4, 16), speed_repeats=1, train_steps=0))
FULL = grade.Options(plans.Settings(speed_repeats=1, train_steps=0))     # the command's batch sizes, 1 4 64
_names = itertools.count()


def compose(snippet: str, folder: Path, name: str | None = None) -> Path:
    """A submission: good.py with one bug from broken/ appended (its definition replaces good.py's)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or snippet}.py"
    bug = (CORPUS / "broken" / f"{snippet}.py").read_text()
    path.write_text((CORPUS / "good.py").read_text() + "\n\n# ---- the bug ----\n" + bug)
    return path


CLASS_BUGS = ("kernel_flipped", "bias_missing", "first_filter_only", "batch_hardcoded", "uninitialised",
              "graph_cut_data", "max_from_zero", "stride_off", "reshape_channel_last", "samples_mixed",
              "mutates_input", "bias_wrong_axis")


def make_class(folder: Path) -> list[Path]:
    """Twelve submissions, a folder each, each with one bug (CLASS_BUGS)."""
    return [compose(bug, Path(folder) / f"student{number:02d}", name="simple_conv_net_func")
            for number, bug in enumerate(CLASS_BUGS)]


def load(path: Path):
    """Import a trusted fixture file under a fresh module name."""
    spec = importlib.util.spec_from_file_location(f"check_fixture_{next(_names)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_process(module, name: str, form: str = "handout", options: grade.Options = QUICK):
    """One function through the checker's plan, runner and analysis, here instead of in a child."""
    function = forms.FORMS[form][name]
    candidate = getattr(module, name)
    found = runner.signature_of(candidate)
    with_device, _ = grade.call_style(function, found) if form == "handout" else (True, None)
    calls, why = grade.plan(function, form, options, found, with_device is not False)
    assert why is None, why
    records = {f"call-{i:03d}": runner.run_call(candidate, call.request()) for i, call in enumerate(calls)}
    return analysis.analyse(function, calls, records)


def require_bwrap() -> None:
    """Skip the test, with the reason, where the sandbox cannot start here (bwrap missing, or not working)."""
    try:
        servers.server_for("bwrap")
    except servers.SandboxError as error:
        pytest.skip(f"the sandbox cannot start here: {error}")


@contextlib.contextmanager
def spawn_only():
    """In the block, the fork server fails to start, as where it cannot: every child is a fresh interpreter."""
    def cannot_start(self, environment, timeout):
        raise forkserver.ServerError("switched off by the test")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(forkserver.Server, "start", cannot_start)
        patch.setattr(servers, "_SERVERS", {})
        patch.setattr(servers, "_UNUSABLE", {})
        yield


def processes_with(marker: str) -> list[int]:
    """The ids of the live processes whose command line holds ``marker`` (zombies are gone, for this)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline, open(f"/proc/{entry}/stat") as stat:
                if marker.encode() in cmdline.read() and stat.read().rsplit(")", 1)[1].split()[0] != "Z":
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python parity_tests/check_helpers.py DIR")
    for path in make_class(Path(sys.argv[1])):
        print(path)

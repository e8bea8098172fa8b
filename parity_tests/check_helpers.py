"""Helpers of the checker's tests: the corpus of submissions, and the checker's steps run in this process.

Also a script: ``python parity_tests/check_helpers.py DIR [--slow]`` writes a class of twelve submissions into DIR
(DIR/student00/simple_conv_net_func.py ...), each good.py with one bug of the corpus (``--slow``: SLOW_CLASS, four
of them with Python-loop scalar functions), to try the checker on.
"""

import importlib.util
import itertools
import sys
from pathlib import Path

from simple_conv_net.check import forms, grade, plans, runner, schedule

CORPUS = Path(__file__).parent / "check_corpus"
QUICK = grade.Options(plans.Settings(batch_sizes=(1, 4, 16), speed_repeats=1, train_steps=0))
FULL = grade.Options(plans.Settings(speed_repeats=1, train_steps=0))     # the command's batch sizes, 1 4 64
_names = itertools.count()


def compose(snippets: str | tuple, folder: Path, name: str | None = None) -> Path:
    """A submission: good.py with snippets appended (their definitions replace good.py's), each the name of a file
    of broken/ (one bug) or a path under check_corpus/ (slow/python_loops: correct but slow)."""
    snippets = (snippets,) if isinstance(snippets, str) else snippets
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or '+'.join(snippet.replace('/', '-') for snippet in snippets)}.py"
    parts = [(CORPUS / ("" if "/" in snippet else "broken") / f"{snippet}.py").read_text() for snippet in snippets]
    path.write_text((CORPUS / "good.py").read_text() + "".join(f"\n\n# ---- {snippet} ----\n{part}"
                                                               for snippet, part in zip(snippets, parts)))
    return path


CLASS_BUGS = ("kernel_flipped", "bias_missing", "first_filter_only", "batch_hardcoded", "uninitialised",
              "graph_cut_data", "max_from_zero", "stride_off", "reshape_channel_last", "samples_mixed",
              "mutates_input", "bias_wrong_axis")


# Twelve submissions as a class hands them in: eight with one bug each, four whose scalar functions are Python loops
# over single entries (correct, and slow), three of those with a bug elsewhere, one with vector functions that loop
# over the batch as well.
SLOW_CLASS = (*CLASS_BUGS[:8], ("slow/python_loops", "samples_mixed"), ("slow/python_loops", "mutates_input"),
              ("slow/python_loops", "slow/batch_loop"), ("slow/python_loops", "reshape_channel_last"))


def make_class(folder: Path, submissions: tuple = CLASS_BUGS) -> list[Path]:
    """Twelve submissions, a folder each, each good.py with the snippets given (CLASS_BUGS: one bug each)."""
    return [compose(snippets, Path(folder) / f"student{number:02d}", name="simple_conv_net_func")
            for number, snippets in enumerate(submissions)]


def load(path: Path):
    """Import a trusted fixture file under a fresh module name."""
    spec = importlib.util.spec_from_file_location(f"check_fixture_{next(_names)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_in_process(module, name: str, form: str = "handout", options: grade.Options = QUICK):
    """One function through the checker's plan, schedule, runner and analysis, here instead of in a child (a call
    cannot be stopped here: every call the plan keeps runs to its end)."""
    form_ = forms.FORMS[form]
    function = form_[name]
    found = runner.signature_of(getattr(module, name))
    style, _ = form_.call_style(function, found)
    calls, why = grade.plan(function, form, options, found, style)
    assert why is None, why
    result = schedule.Schedule(calls, options.budget).run(
        schedule.in_process(lambda call: form_.call(module, name, call.request())))
    return form_.judge(function, calls, result, options.settings)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or sys.argv[2:] not in ([], ["--slow"]):
        sys.exit("usage: python parity_tests/check_helpers.py DIR [--slow]")
    for path in make_class(Path(sys.argv[1]), SLOW_CLASS if sys.argv[2:] else CLASS_BUGS):
        print(path)

"""Helpers of the checker's tests: the corpus of submissions, and the checker's steps run in this process."""

import importlib.util
import itertools
from pathlib import Path

from simple_conv_net.check import analysis, forms, grade, plans, runner

CORPUS = Path(__file__).parent / "check_corpus"
QUICK = grade.Options(plans.Settings(speed_repeats=1, train_steps=0))
_names = itertools.count()


def compose(snippet: str, folder: Path, name: str | None = None) -> Path:
    """A submission: good.py with one bug from broken/ appended (its definition replaces good.py's)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or snippet}.py"
    bug = (CORPUS / "broken" / f"{snippet}.py").read_text()
    path.write_text((CORPUS / "good.py").read_text() + "\n\n# ---- the bug ----\n" + bug)
    return path


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

"""The checker's outputs, all rendered from one report (a JSON-ready dict):

- the report itself (``--json``): {"target", "form", "functions": {NAME: {"status", "checks": [{"name",
  "passed", "detail"}], "diagnoses", "seconds", "not_checked": [{"name", "detail"}], "grading_error",
  ...}}, "score", "max_score", "grading_errors": [str], "graded": bool, ...}. The keys named in the
  README are stable; more may be added (notes, signature, output, rubric, epoch, settings). A
  grading error is a fault that is not the submission's (missing MNIST data, a checker error, a
  child process that could not start): the rubric items it touches are not graded (see rubric)
  and the command exits with status 2;
- a score card for the terminal;
- a Markdown report for the student (``--feedback``);
- Gradescope's autograder ``results.json`` (``--gradescope``) and PrairieLearn's (``--prairielearn``), see
  :mod:`.platforms`; neither is written with a score for a report that is not graded.

Being pure functions of the dict, they can be written again from a stored report (a batch
rerun with another rubric rescoring what was graded, see :mod:`.batch`).
"""

from __future__ import annotations

import json
from dataclasses import asdict

import torch

from ..compare import NATIVE_SLACK, TOLERANCE
from ..io import atomic_write_text
from .analysis import FunctionResult
from .forms import FORMS
from .rubric import Rubric, score

FAILING_SHOWN = 4


def _power(x: float) -> str:
    """1e-05 written as 1e-5."""
    return f"{x:g}".replace("e-0", "e-")


TIME_RULE = ("Slow code is no fault: each function has a time budget (--timeout seconds) planned from the time of "
             "its first call, and a call that would not fit, or does not return within its limit, is not checked: it "
             "counts neither for nor against. Only the calls that ran are judged.")
RULE = (f"Every function is run on the homework's shapes and compared with native PyTorch computed in float64 on "
        f"the same inputs: a result passes when its largest error, relative to the largest value, is at most "
        f"{_power(TOLERANCE[torch.float64])} in float64; in float32 at most {_power(TOLERANCE[torch.float32])}, or "
        f"{NATIVE_SLACK:g} times native float32's own error where that is larger (simple_conv_net/compare.py's "
        f"rule; the handout's diff_mse is shown beside it).")


def function_entry(result: FunctionResult) -> dict:
    entry = asdict(result)
    entry.pop("name")
    entry["seconds"] = round(entry["seconds"], 3)
    return entry


def grading_errors(report: dict) -> list[str]:
    """The faults that are not the submission's: the report's own (a submission the checker failed on) and each
    function's."""
    return list(dict.fromkeys([*report.get("ungraded", []), *(f"{name}: {entry['grading_error']}" for name, entry in
                                                              report["functions"].items() if entry.get("grading_error"))]))


def rescore(report: dict, rubric: Rubric) -> dict:
    """The report with its score (and rubric items) from ``rubric``, and its grading errors."""
    errors = grading_errors(report)
    scored = score(rubric, report["functions"], report.get("only"), whole="; ".join(report.get("ungraded", [])) or None)
    return dict(report, score=scored["score"], max_score=scored["max_score"], rubric=scored, grading_errors=errors,
                graded=scored["graded"])


def passed(report: dict) -> bool:
    """Every function present passed (a missing one does not count against a form whose functions are optional)."""
    form = FORMS.get(report["form"])
    allowed = {"pass", "missing"} if form is not None and form.optional else {"pass"}
    return all(entry["status"] in allowed for entry in report["functions"].values())


def exit_status(reports: list[dict]) -> int:
    """0 when every function of every report passed, 1 when one did not, 2 when a grading error left something
    ungraded (it is not the submissions' fault: fix it and run again)."""
    if any(r.get("grading_errors") for r in reports):
        return 2
    return 0 if all(passed(r) and (r["functions"] or r.get("only")) for r in reports) else 1


def _count(entry: dict) -> str:
    return f"{sum(c['passed'] for c in entry['checks'])}/{len(entry['checks'])}"


def score_line(report: dict) -> str:
    """The score and what it means: the sum of the graded items, the rubric's points, the cap."""
    rubric = report["rubric"]
    total, cap, earned = rubric["total_points"], rubric["max_score"], rubric.get("sum", report["score"])
    parts = []
    if total > cap:
        parts.append(f"the items earned {earned:g} of their {total:g} points, {total - cap:g} of them bonus; the score "
                     f"is capped at {cap:g}")
    ungraded = [item for item in rubric["items"] if not item.get("graded", True)]
    if ungraded:
        parts.append(f"not graded: {', '.join(item['name'] for item in ungraded)} "
                     f"({sum(item['points'] for item in ungraded):g} points, counted in neither)")
    return f"score {report['score']:g} / {report['max_score']:g}" + (f" ({'; '.join(parts)})" if parts else "")


def _not_checked_lines(entry: dict, prefix: str, shown: int) -> list[str]:
    missing = entry.get("not_checked", [])
    lines = [f"{prefix}{item['name']}: {item['detail']}" for item in missing[:shown]]
    if len(missing) > shown:
        lines.append(f"{prefix}... and {len(missing) - shown} more not checked")
    return lines


def epoch_answer(report: dict) -> str:
    """The homework's task 3 question, answered: seconds per epoch, as estimated."""
    parts = [f"{kind} about {e['seconds']:.3g} s (native {e['native']:.3g} s, {e['seconds'] / e['native']:.3g}x)"
             for kind, e in report.get("epoch", {}).items()]
    return "; ".join(parts) if parts else "not estimated (the layer functions were not all timed)"


CARD_KEY = ("checks: of every check of the function, how many pass (the rubric counts some kinds only, see its "
            "items); not run: its calls that did not run for lack of time, counted neither for nor against")


def card(report: dict) -> str:
    """The terminal's score card."""
    lines = [f"simple_conv_net.check: {report['target']} ({report['form']} form), {report['seconds']:.0f} s", ""]
    width = max([20, *(len(name) + 2 for name in report["functions"])])
    lines.append(f"{'function':<{width}}{'status':<12}{'checks':>8}{'not run':>9}{'seconds':>9}")
    for name, entry in report["functions"].items():
        skipped = len(entry.get("not_checked", [])) or "-"
        lines.append(f"{name:<{width}}{entry['status']:<12}{_count(entry):>8}{skipped:>9}{entry['seconds']:>9.1f}")
    lines.append(f"({CARD_KEY})")
    for name, entry in report["functions"].items():
        if entry["status"] in ("pass", "missing") and not entry["notes"] and not entry.get("not_checked"):
            continue
        lines.append("")
        lines.append(f"{name}: {entry['status']}" + (f"   {entry['signature']}" if entry.get("signature") else ""))
        failing = [c for c in entry["checks"] if not c["passed"]]
        for check in failing[:FAILING_SHOWN]:
            lines.append(f"  x {check['name']}: {check['detail']}")
        if len(failing) > FAILING_SHOWN:
            lines.append(f"  x ... and {len(failing) - FAILING_SHOWN} more failing checks")
        lines += _not_checked_lines(entry, "  ? ", 2)
        lines += [f"  ! {text}" for text in entry["diagnoses"]]
        lines += [f"  - {text}" for text in entry["notes"]]
    if has_training(report):
        lines += ["", f"time per epoch (task 3): {epoch_answer(report)}"]
    lines += [f"note: {text}" for text in report.get("notes", [])]
    rubric = report["rubric"]
    lines += ["", f"rubric {rubric['rubric']}:"]
    lines += [f"  {item['name']:<40}" + (f"{item['score']:>7.2f} / {item['points']:g}" if item.get("graded", True)
                                         else f"{'-':>7} / {item['points']:g}   {item['detail']}")
              for item in rubric["items"]]
    lines.append(score_line(report))
    if report.get("grading_errors"):
        lines += ["", "grading errors (not the submission's fault: the items they touch are not graded; fix them "
                      "and run again):"] + [f"  {text}" for text in report["grading_errors"]]
    return "\n".join(lines)


def has_training(report: dict) -> bool:
    """Whether the report's form has task 3 (training SimpleConvNet from its functions)."""
    form = FORMS.get(report["form"])
    return form is None or form.trains or bool(report.get("epoch"))


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _cell(text: str) -> str:
    """Text for a Markdown table cell: one line, no column separator."""
    return " ".join(text.split()).replace("|", "\\|")


def _item_score(item: dict) -> str:
    return "not graded" if item["score"] is None else f"{item['score']:g}"


def _fence(text: str) -> str:
    return "```\n" + text.replace("```", "'''").rstrip() + "\n```"


def feedback(report: dict) -> str:
    """Markdown written for the student."""
    rubric = report["rubric"]
    lines = [f"# Feedback on {report['target']}", "",
             f"**{_sentence(score_line(report))}** (rubric `{rubric['rubric']}`)", "",
             "| item | score | points | how |", "|---|---:|---:|---|"]
    lines += [f"| {_cell(item['name'])} | {_item_score(item)} | {item['points']:g} | {_cell(item['detail'])} |"
              for item in rubric["items"]]
    if report.get("grading_errors"):
        lines += ["", "**Not graded**, through no fault of yours (the checker's or the grading machine's; it will "
                      "be graded again once fixed): " + "; ".join(report["grading_errors"])]
    form = FORMS.get(report["form"])
    lines += ["", form.rule if form is not None and form.rule else RULE, "", TIME_RULE, ""]
    lines += [f"Time per epoch (task 3): {epoch_answer(report)}.", ""] if has_training(report) else []
    passing = [name for name, entry in report["functions"].items()
               if entry["status"] == "pass" and not entry["notes"] and not entry.get("not_checked")]
    if passing:
        lines += [f"Every check passes for {', '.join(f'`{name}`' for name in passing)}.", ""]
    for name, entry in report["functions"].items():
        if name in passing:
            continue
        lines.append(f"## `{name}`: {entry['status']}")
        if entry.get("signature"):
            lines.append(f"Signature: `{name}{entry['signature']}`")
        lines.append("")
        if entry["diagnoses"]:
            lines.append("What is wrong, and why we think so:")
            lines += [f"- {text}" for text in entry["diagnoses"]]
            lines.append("")
        failing = [c for c in entry["checks"] if not c["passed"]]
        if failing:
            lines.append(f"Failing checks ({len(failing)} of its {len(entry['checks'])} checks, all kinds; the table "
                         f"above counts the kinds each item grades):")
            lines += [f"- **{c['name']}**: {c['detail']}" for c in failing]
            lines.append("")
        if entry.get("not_checked"):
            count = len(entry["not_checked"])
            lines.append(f"Not checked ({count} call{'s' * (count != 1)}, counted neither for nor against):")
            lines += _not_checked_lines(entry, "- ", 8) + [""]
        lines += [f"> {text}" for text in entry["notes"]] + ([""] if entry["notes"] else [])
        if entry.get("output", "").strip():
            lines += ["What it printed:", _fence(entry["output"]), ""]
    lines += [f"Note: {text}" for text in report.get("notes", [])]
    if report.get("traceback"):
        lines += ["", "The checker failed on this submission: a bug in the checker, not a fault of the submission. "
                      "Its traceback's last lines:", _fence(report["traceback"])]
    return "\n".join(lines).rstrip() + "\n"


def dumps(document: dict) -> str:
    return json.dumps(document, indent=2) + "\n"


def write_outputs(result: dict, json_path=None, gradescope_path=None, feedback_path=None,
                  prairielearn_path=None) -> None:
    """The report as JSON, as Gradescope's and PrairieLearn's results.json and as Markdown feedback, each where a path
    is given (written atomically). A report that is not graded gets no Gradescope file: it would be a score."""
    from . import platforms     # it renders with this module's helpers
    if json_path:
        atomic_write_text(json_path, dumps(result))
    if gradescope_path and not platforms.not_graded(result):
        atomic_write_text(gradescope_path, dumps(platforms.gradescope(result)))
    if prairielearn_path:
        atomic_write_text(prairielearn_path, dumps(platforms.prairielearn(result)))
    if feedback_path:
        atomic_write_text(feedback_path, feedback(result))

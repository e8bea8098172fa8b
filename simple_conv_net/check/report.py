"""The checker's outputs, all rendered from one report (a JSON-ready dict):

- the report itself (``--json``): {"target", "form", "functions": {NAME: {"status", "checks": [{"name",
  "passed", "detail"}], "diagnoses", "seconds", ...}}, "score", "max_score", ...}. The keys named in
  the README are stable; more may be added (notes, signature, output, rubric, epoch, settings);
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
from .rubric import Rubric, score

FAILING_SHOWN = 4


def _power(x: float) -> str:
    """1e-05 written as 1e-5."""
    return f"{x:g}".replace("e-0", "e-")


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


def rescore(report: dict, rubric: Rubric) -> dict:
    """The report with its score (and rubric items) from ``rubric``."""
    scored = score(rubric, report["functions"])
    return dict(report, score=scored["score"], max_score=scored["max_score"], rubric=scored)


def passed(report: dict) -> bool:
    """Every function present passed (the functional form's missing ones do not count against it)."""
    allowed = {"pass", "missing"} if report["form"] == "functional" else {"pass"}
    return all(entry["status"] in allowed for entry in report["functions"].values())


def _count(entry: dict) -> str:
    return f"{sum(c['passed'] for c in entry['checks'])}/{len(entry['checks'])}"


def epoch_answer(report: dict) -> str:
    """The homework's task 3 question, answered: seconds per epoch, as estimated."""
    parts = [f"{kind} about {e['seconds']:.3g} s (native {e['native']:.3g} s, {e['seconds'] / e['native']:.3g}x)"
             for kind, e in report.get("epoch", {}).items()]
    return "; ".join(parts) if parts else "not estimated (the layer functions were not all timed)"


def card(report: dict) -> str:
    """The terminal's score card."""
    lines = [f"simple_conv_net.check: {report['target']} ({report['form']} form), {report['seconds']:.0f} s", ""]
    lines.append(f"{'function':<20}{'status':<10}{'checks':>8}{'seconds':>9}")
    for name, entry in report["functions"].items():
        lines.append(f"{name:<20}{entry['status']:<10}{_count(entry):>8}{entry['seconds']:>9.1f}")
    for name, entry in report["functions"].items():
        if entry["status"] in ("pass", "missing") and not entry["notes"]:
            continue
        lines.append("")
        lines.append(f"{name}: {entry['status']}" + (f"   {entry['signature']}" if entry.get("signature") else ""))
        failing = [c for c in entry["checks"] if not c["passed"]]
        for check in failing[:FAILING_SHOWN]:
            lines.append(f"  x {check['name']}: {check['detail']}")
        if len(failing) > FAILING_SHOWN:
            lines.append(f"  x ... and {len(failing) - FAILING_SHOWN} more failing checks")
        lines += [f"  ! {text}" for text in entry["diagnoses"]]
        lines += [f"  - {text}" for text in entry["notes"]]
    lines += ["", f"time per epoch (task 3): {epoch_answer(report)}"]
    lines += [f"note: {text}" for text in report.get("notes", [])]
    rubric = report["rubric"]
    lines += ["", f"rubric {rubric['rubric']}:"]
    lines += [f"  {item['name']:<40}{item['score']:>7.2f} / {item['points']:g}" for item in rubric["items"]]
    capped = " (capped)" if sum(i["score"] for i in rubric["items"]) > rubric["max_score"] else ""
    lines.append(f"score {report['score']:g} / {report['max_score']:g}{capped}")
    return "\n".join(lines)


def _fence(text: str) -> str:
    return "```\n" + text.replace("```", "'''").rstrip() + "\n```"


def feedback(report: dict) -> str:
    """Markdown written for the student."""
    rubric = report["rubric"]
    lines = [f"# Feedback on {report['target']}", "",
             f"**Score: {report['score']:g} / {report['max_score']:g}** (rubric `{rubric['rubric']}`)", "",
             "| item | score | points | how |", "|---|---:|---:|---|"]
    lines += [f"| {item['name']} | {item['score']:g} | {item['points']:g} | {item['detail']} |" for item in
              rubric["items"]]
    lines += ["", RULE, ""]
    lines += [f"Time per epoch (task 3): {epoch_answer(report)}.", ""]
    passing = [name for name, entry in report["functions"].items() if entry["status"] == "pass" and not entry["notes"]]
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
            lines.append(f"Failing checks ({len(failing)} of {len(entry['checks'])}):")
            lines += [f"- **{c['name']}**: {c['detail']}" for c in failing]
            lines.append("")
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

"""The results files of the platforms courses grade on, rendered from the checker's report (pure functions of it,
as report.py's outputs are).

Gradescope's autograder results.json (https://gradescope-autograders.readthedocs.io/en/latest/specs/): the
score, ``execution_time``, the student-facing ``output`` (Markdown), the default ``visibility`` of the tests,
and a test per rubric item: name, number, score, max_score, status ("passed" when the item earned all its
points), its own visibility where the rubric gives one, and an ``output`` in Markdown with the item's
diagnoses and failing checks. Gradescope takes the top-level score as the grade.

PrairieLearn's external grader results.json
(https://prairielearn.readthedocs.io/en/latest/externalGrading/): ``gradable``, ``score`` as a fraction in
[0, 1], a ``message``, the score card as ``output``, and a test per rubric item: name, description,
points, max_points, message, output.

A report that is not graded gets no score in either format (:func:`not_graded` says why): a fault of
the grader is never a 0 for the student. Gradescope has no field for "not graded": its results.json
must carry a score, which would become the grade, so none is written (:class:`NotGraded`) and the
autograder leaves the run failed (see autograder.py). PrairieLearn has one: ``"gradable": false``
awards and takes no points and charges no attempt, with the reason in ``message``. The same
``gradable: false`` tells a PrairieLearn student what to rename when the upload holds no file to
grade; on Gradescope that is a results.json with score 0 and the message (the student resubmits).
"""

from __future__ import annotations

import html
import signal

from . import report as outputs
from .sandbox import SIGNALS

KILLED = SIGNALS[signal.SIGKILL]     # a child's crash reason when something outside the checker killed it
CHECKER_ERROR = "checker error: "    # how analysis.checker_failure's diagnosis begins


class NotGraded(ValueError):
    """The report holds grading errors: no score may be written for it."""

    def __init__(self, reasons: list[str]):
        super().__init__("; ".join(reasons))
        self.reasons = reasons


def not_graded(report: dict) -> list[str]:
    """Why the report is not a grade, empty when it is: its grading errors (``report["grading_errors"]``), the
    rubric items the checker could not grade (``"graded": false``), a checker error, or a child killed from outside
    the checker (by the kernel's out-of-memory killer, as a rule: the container was too small, not the code)."""
    reasons = list(report.get("grading_errors") or [])
    items = (report.get("rubric") or {}).get("items", [])
    reasons += [f"{item['name']}: not graded: {item.get('not_graded') or 'no reason given'}"
                for item in items if item.get("graded") is False]
    for name, entry in report.get("functions", {}).items():
        reasons += [f"{name}: {text}" for text in entry.get("diagnoses", [])
                    if text.startswith(CHECKER_ERROR) or (entry.get("status") == "crashed" and KILLED in text)]
    if report.get("traceback"):      # batch.py's report of a submission the checker failed on
        reasons += report.get("notes", [])[:1] or ["checker error"]
    if report.get("graded") is False and not reasons:
        reasons.append("the checker marked this report not graded")
    return list(dict.fromkeys(reasons))


def markdown(text: str) -> str:
    """Text of the checker's, which may quote the submission (its exceptions, its output), safe in Markdown: no HTML."""
    return html.escape(text, quote=False)


def _function_lines(name: str, entry: dict | None, escape) -> list[str]:
    """A function's diagnoses and failing checks, as bullets under its name (nothing for a clean pass)."""
    if entry is None or (entry["status"] == "pass" and not entry["diagnoses"]):
        return []
    failing = [c for c in entry["checks"] if not c["passed"]]
    lines = [f"**`{name}`: {entry['status']}**"]
    lines += [f"- {escape(text)}" for text in entry["diagnoses"]]
    lines += [f"- failing: *{escape(c['name'])}*: {escape(c['detail'])}" for c in failing[:outputs.FAILING_SHOWN]]
    if len(failing) > outputs.FAILING_SHOWN:
        lines.append(f"- ... and {len(failing) - outputs.FAILING_SHOWN} more failing checks")
    return lines


def item_output(report: dict, item: dict, escape=markdown) -> str:
    """One rubric item: how it was scored, then each of its functions' findings (Markdown; ``escape=str`` where the
    platform shows it as plain text)."""
    lines = [escape(item["detail"])]
    for name in item["functions"]:
        found = _function_lines(name, report["functions"].get(name), escape)
        lines += ["", *found] if found else []
    return "\n".join(lines)


def summary(report: dict, note: str | None = None) -> str:
    """The student-facing text above the tests: what was graded and how values are judged (each item's results are
    in its test, so a hidden item's stay hidden)."""
    lines = [f"Checked `{markdown(report['target'])}` ({report['form']} form) against native PyTorch."]
    lines += [markdown(note)] if note else []
    lines += ["", markdown(outputs._sentence(outputs.score_line(report))) + "."]
    lines += ["", outputs.RULE]
    lines += ["", f"Time per epoch (task 3): {outputs.epoch_answer(report)}."] if outputs.has_training(report) else []
    lines += [f"\nNote: {markdown(text)}" for text in report.get("notes", [])]
    return "\n".join(lines)


def _graded(report: dict) -> None:
    reasons = not_graded(report)
    if reasons:
        raise NotGraded(reasons)


def gradescope(report: dict, visibility: str = "visible", note: str | None = None) -> dict:
    """Gradescope's results.json for a graded report (NotGraded otherwise): its visibility ``visibility`` unless the
    rubric item says otherwise; ``note`` (what was graded, as uploaded) joins the student-facing output."""
    _graded(report)
    tests = []
    for number, item in enumerate(report["rubric"]["items"], 1):
        test = {"name": item["name"], "number": str(number), "score": item["score"], "max_score": item["points"],
                "status": "passed" if item["score"] >= item["points"] else "failed",
                "output": item_output(report, item), "output_format": "md"}
        tests.append(test | ({"visibility": item["visibility"]} if item.get("visibility") else {}))
    return {"score": report["score"], "execution_time": round(report["seconds"]),
            "output": summary(report, note), "output_format": "md", "test_output_format": "md",
            "visibility": visibility, "tests": tests,
            "extra_data": {"form": report["form"], "max_score": report["max_score"],
                           "settings": report.get("settings", {})}}


def gradescope_unusable(message: str, seconds: float) -> dict:
    """Gradescope's results.json for an upload holding nothing to grade: score 0, and what to upload or rename."""
    return {"score": 0.0, "execution_time": round(seconds), "output": markdown(message), "output_format": "md",
            "tests": []}


def prairielearn(report: dict, note: str | None = None) -> dict:
    """PrairieLearn's results.json: the score as a fraction of the rubric's maximum, a test per item; a report not
    graded is not gradable, with the reasons (see the module's doc). ``note`` joins the message."""
    reasons = not_graded(report)
    if reasons:
        return prairielearn_not_graded(reasons)
    tests = [{"name": item["name"], "description": item["detail"], "points": item["score"],
              "max_points": item["points"],
              "message": "; ".join(text for name in item["functions"]
                                   for text in report["functions"].get(name, {}).get("diagnoses", [])),
              "output": item_output(report, item, escape=str)} for item in report["rubric"]["items"]]
    fraction = min(1.0, max(0.0, report["score"] / report["max_score"]))
    return {"gradable": True, "score": round(fraction, 6),
            "message": f"Score {report['score']:g} / {report['max_score']:g} (rubric {report['rubric']['rubric']})."
                       + (f" {note}" if note else ""),
            "output": outputs.card(report), "tests": tests}


def prairielearn_not_graded(reasons: list[str]) -> dict:
    text = ("Not graded: the grader failed, not your submission (" + "; ".join(reasons) + "). No points were "
            "awarded or taken and no attempt is counted; your course staff can grade it again once it is fixed.")
    return {"gradable": False, "message": text, "output": "\n".join(reasons)}


def prairielearn_unusable(message: str) -> dict:
    """PrairieLearn's results.json for an upload holding nothing to grade: not gradable (no attempt counted), and
    what to upload or rename."""
    return {"gradable": False, "message": message, "format_errors": [message]}

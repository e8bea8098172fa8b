"""What a form's judges found about one function: checks, findings per class of cases, diagnoses and notes.

Shared by the forms whose judging is their own (lenet-dict, instructors' forms built with :mod:`.adapter`), with
the comparisons they share. A check's name starts with its kind (values, gradient, type, arguments...), which a
rubric counts. The ``assignment`` and ``ties`` classes of cases decide; a ``general`` case (non-square inputs,
other strides and paddings) fails a function only when ``strict``, and is otherwise reported as a note (with
the diagnosis found there: "reported (general cases): ..."). Findings are short codes ("zeros:out",
"layout:chw-C", "w", "blocked"...), kept as notes ``finding CASE: CODES`` so that tests and instructors can
read them back from the report.
"""

from __future__ import annotations

import torch

from ...compare import compare

DECIDING = ("assignment", "ties")


class Verdict:
    """What one function's calls showed: checks [(name, passed, detail)], findings per case, diagnoses, notes."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.checks: list[tuple[str, bool, str]] = []
        self.findings: dict[str, list[str]] = {}
        self.diagnoses: list[str] = []
        self.notes: list[str] = []

    def check(self, kind: str, what: str, case: str, passed: bool, detail: str) -> None:
        if passed or case in DECIDING or self.strict:
            self.checks.append((f"{kind} {what} ({case})", passed, detail))
        else:
            self.notes.append(f"{what} ({case}, reported; fails only with --strict): {detail}")

    def find(self, case: str, code: str, diagnosis: str | None = None) -> None:
        codes = self.findings.setdefault(case, [])
        if code not in codes:
            codes.append(code)
        if diagnosis and diagnosis not in self.diagnoses:
            self.diagnoses.append(diagnosis)

    def finding_notes(self) -> list[str]:
        return [f"finding {case}: {', '.join(codes)}" for case, codes in self.findings.items()]


def compared(truth: torch.Tensor, got: torch.Tensor | None):
    """compare's verdict on ``got`` (float64) against native's ``truth``, or None when nothing came back."""
    return None if got is None else compare(truth, got.to(torch.float64), dtype=torch.float64)


def placeholder_zeros(got: torch.Tensor | None, truth: torch.Tensor) -> bool:
    """Zeros of the expected size where native's answer is not: a starter's placeholder."""
    return got is not None and got.numel() == truth.numel() and not bool(got.any()) and bool(truth.any())


def detail(comparison) -> str:
    if comparison.problem:
        return comparison.problem
    return f"max_rel {comparison.max_rel:.3g} (tolerance {comparison.tolerance:.0e})"


def judged(seen: list) -> list:
    """The calls that returned a record to judge (analysis.Seen)."""
    return [s for s in seen if s.fate.judged and s.record is not None]


def result_of(function, calls: list, result, verdict: Verdict, judge):
    """The analysis.FunctionResult of a function whose ``judge(seen)`` (the calls that ran, analysis.Seen) fills
    ``verdict`` and returns notes of its own; error when every call raised or was blocked; a bug of the checker's
    while judging makes it "not graded", with a grading error that says so."""
    from .. import analysis
    try:
        seen = analysis.seen_calls(calls, result)
        ran = judged(seen)
        notes = judge(ran)
        checks = [analysis.Check(*check) for check in verdict.checks]
        status = analysis.status_of(checks, [s for s in seen if s.fate.judged], result.ended)
        if ran and all(s.record.get("error") or s.record.get("blocked") for s in ran):
            status = "error"
        reported = [f"reported (general cases): {text}" for text in verdict.diagnoses] if status == "pass" else []
        return function_result(function.name, status, checks, verdict.diagnoses if status != "pass" else [],
                               list(dict.fromkeys(notes + reported + verdict.notes + verdict.finding_notes())), seen,
                               result)
    except Exception as error:  # noqa: BLE001 - a bug of the checker's: this function is not graded, and says so
        return analysis.checker_failure(function.name, error)


def function_result(name: str, status: str, checks: list, diagnoses: list, notes: list, seen: list, result):
    """The analysis.FunctionResult of a form's own judging: its verdict, with what ran and what did not."""
    from .. import analysis
    return analysis.FunctionResult(
        name, status, checks, diagnoses=diagnoses, seconds=result.seconds, notes=notes, output=result.output,
        not_checked=[{"name": s.call.label, "detail": s.fate.reason or "not run"} for s in seen if not s.fate.judged],
        calls=[{"name": s.call.label, "state": s.fate.state,
                "seconds": None if s.fate.seconds is None else round(s.fate.seconds, 4)} for s in seen])

"""The checks of each call of a cs231n function, and the function's status, diagnoses and notes from them."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from .. import drift
from ..analysis import GRADING_ERROR, Check, FunctionResult, seen_calls
from ..oracle import truth_of
from ..plans import Call
from ..text import error_text, where
from .cases import DECISIVE
from .compare import CONVENTION, EQUAL, close, relative
from .why import EPS_OUTSIDE, eps_outside, hypotheses, running_statistics_diagnoses


def _shape(t) -> str:
    return str(tuple(t.shape))


def _judge(kind: str, name: str, label: str, candidate, info: dict, truth, near: list) -> list[Check]:
    """type, shape and values (or gradient) checks of one returned array against the truth; (name, label, error)
    appended to ``near`` where it is within 1e-5 but not equal (a convention: noted, see Findings.convention_notes)."""
    if candidate is None:
        what = "None" if info.get("type") == "NoneType" else f"a {info.get('type')}"
        return [Check(f"type {name} [{label}]", False, f"{name} is {what}, not an array")]
    checks = [Check(f"type {name} [{label}]", True, "an array")]
    if tuple(candidate.shape) != tuple(truth.shape):     # a wrong shape is a wrong value too (what a rubric weighs)
        said = f"{name} has shape {_shape(candidate)}, native {_shape(truth)}"
        return checks + [Check(f"shape {name} [{label}]", False, said),
                         Check(f"{kind} {name} [{label}]", False, f"not comparable: {said}")]
    checks.append(Check(f"shape {name} [{label}]", True, _shape(truth)))
    error = relative(candidate.to(torch.float64), truth)
    if error <= EQUAL:
        return checks + [Check(f"{kind} {name} [{label}]", True, f"relative error {error:.1e}")]
    if error <= CONVENTION:
        near.append((name, label, error))
        return checks + [Check(f"{kind} {name} [{label}]", True, f"relative error {error:.1e} (within 1e-5: noted)")]
    return checks + [Check(f"{kind} {name} [{label}]", False, f"relative error {error:.1e} against native PyTorch")]


# ----------------------------------------------------------------------------- one function


class Findings:
    """The checks, notes and diagnoses of one function, as they are found."""

    def __init__(self) -> None:
        self.checks, self.notes, self.diagnoses = [], [], []
        self.near, self.causes = [], []     # (name, label, relative error) within 1e-5; what explains each call's
        self.calls = []                     # the calls judged (of a case spelt several ways, the one that stands)

    def add(self, checks: list[Check], general: bool) -> None:
        self.checks += [replace(c, name=f"general {c.name}") if general else c for c in checks]

    def say(self, text: str) -> None:
        """A diagnosis, once: the same finding at another case is not said again."""
        if all(_finding(text) != _finding(said) for said in self.diagnoses):
            self.diagnoses.append(text)

    def merge(self, other: "Findings") -> None:
        self.checks += other.checks
        self.notes += [n for n in other.notes if n not in self.notes]
        self.near += other.near
        self.causes += other.causes
        for text in other.diagnoses:
            self.say(text)

    def convention_notes(self) -> list[str]:
        """A note per output within 1e-5 of native but not equal, with its cases and the cause found, if one is."""
        errors = {}
        for name, label, error in self.near:
            errors.setdefault(name, []).append(error)
        cause = f": {self.causes[0]}" if self.causes and len(set(self.causes)) == 1 and self.causes[0] else ""
        return [f"{name} within 1e-5 of native PyTorch but not equal at {len(found)} case(s) (relative error up to "
                f"{max(found):.1e}): a convention, noted, not failed{cause}" for name, found in errors.items()]


def _finding(text: str) -> str:
    """A diagnosis without the case it was found at."""
    return text.split(" (at ")[0]


def _error_diagnosis(error: dict, label: str) -> str:
    advice = drift.advice(error)
    said = f"raises {error_text(error)}{where(error['traceback'])} (at {label})"
    return f"{advice}; {said}" if advice else said


def _forward_checks(function, s, found: Findings, general: bool) -> None:
    if function.op == "cs231n.dropout":
        return _dropout_forward(s, found, general)
    record, truth = s.record, truth_of(s.call)
    out_name = "loss" if function.kind == "loss" else "out"
    checks = _judge("values", out_name, s.call.label, record.get("output"), record.get("output_info", {}),
                    truth.exact.output, found.near)
    for key, value in truth.exact.updated.items():
        checks += [c for c in _judge("values", key, s.call.label, record.get("updated", {}).get(key),
                                     {"type": "NoneType"}, value, found.near) if not c.name.startswith("type")]
    found.add(checks, general)
    if record.get("output") is not None and not all(c.passed for c in checks):
        for text in hypotheses(function, s, "out"):
            found.say(text)


def _arguments(s, found: Findings, general: bool) -> None:
    record = s.record
    changed = [name for name, value in record.get("args_after", {}).items()
               if name in s.call.inputs and name not in s.call.updates
               and (tuple(value.shape) != tuple(s.call.inputs[name].shape)
                    or not torch.equal(value.to(torch.float64), s.call.inputs[name].to(torch.float64)))]
    changed += ["dout"] if record.get("dout_changed") else []
    changed += [f"its parameter dict's {key!r}" for key in record.get("param_changes", [])]
    text = "; ".join(f"changes {name} in place" for name in changed) or "leaves its arguments unchanged"
    found.add([Check(f"arguments [{s.call.label}]", not changed, text)], general)
    for name in changed:
        found.say(f"changes its argument {name} in place (copy it first: the caller's array is changed)")


def _gradient_checks(function, s, found: Findings, general: bool) -> None:
    if function.op == "cs231n.dropout":
        return _dropout_backward(s, found, general)
    record, truth = s.record, truth_of(s.call)
    wrong = []
    for name in function.grads:
        grad = (record.get("grads") or {}).get(name)
        checks = _judge("gradient", f"d{name}", s.call.label, grad, (record.get("grad_info") or {}).get(name, {}),
                        truth.exact.grads[name], found.near)
        found.add(checks, general)
        if not all(c.passed for c in checks) and grad is not None:
            wrong.append(name)
        fd = (record.get("fd") or {}).get(name)
        if fd is not None and grad is not None and grad.numel() and tuple(grad.shape) == tuple(truth.exact.grads[name].shape):
            analytic = grad.reshape(-1)[fd["index"]].to(torch.float64)
            error = relative(analytic, fd["numeric"]) if fd["numeric"].abs().max() > 1e-12 else \
                (analytic - fd["numeric"]).abs().max().item()
            found.add([Check(f"consistency d{name} [{s.call.label}]", error <= 1e-4,
                             f"against central differences of its own forward: relative error {error:.1e}")], general)
            if error <= 1e-4 and name in wrong and not close(record.get("output"), truth.exact.output, EQUAL):
                found.say(f"d{name} is wrong against native PyTorch but right for its own forward, which is wrong: "
                          f"the forward is the bug ({function.pair})")
    if record.get("fd_skipped"):
        found.notes.append(f"consistency not checked at {s.call.label}: {record['fd_skipped']}")
    for name in wrong:
        for text in hypotheses(function, s, name):
            found.say(text)


def _dropout_forward(s, found: Findings, general: bool) -> None:
    record, call = s.record, s.call
    out, x, p = record.get("output"), call.inputs["x"], call.options["p"]
    label = call.label
    if out is None:
        found.add(_judge("values", "out", label, None, record.get("output_info", {}), x, found.near), general)
        return
    if tuple(out.shape) != tuple(x.shape):
        found.add([Check(f"shape out [{label}]", False, f"out has shape {_shape(out)}, x {_shape(x)}")], general)
        return
    if call.options["mode"] == "test":
        found.add(_judge("values", "out", label, out, {}, x, found.near), general)
        return
    kept = out != 0
    share = kept.double().mean().item()
    scales = (out[kept] / x[kept]) if kept.any() else torch.ones(1, dtype=torch.float64)
    scale = scales.mean().item()
    spread = 5 * math.sqrt(p * (1 - p) / x.numel())
    newer = record.get("newer", True)
    if abs(share - p) <= spread:
        convention, keep = "keep", p
    elif abs(share - (1 - p)) <= spread:
        convention, keep = "drop", 1 - p
    else:
        convention, keep = None, None
    checks = [Check(f"shape out [{label}]", True, _shape(x))]
    if convention is None:
        phi = 0.5 * (1 + math.erf(p / math.sqrt(2)))
        why = f"kept {share:.3f} of the units, neither p = {p} nor 1 - p"
        if abs(share - phi) <= spread:
            found.say(f"the mask is drawn with randn, not rand: units are kept with probability Phi(p) = {phi:.3f}, "
                      f"not p (at {label})")
        checks.append(Check(f"values out [{label}]", False, why))
    else:
        uniform = (scales - scale).abs().max().item() <= 1e-9 * abs(scale)
        right = uniform and abs(scale - 1 / keep) <= 1e-9 / keep
        if not right and uniform and abs(scale - 1) <= 1e-9:
            found.say(f"not inverted dropout: kept units are not scaled by 1/p (the training output's mean is p "
                      f"times the input's) (at {label})")
        checks.append(Check(f"values out [{label}]", right,
                            f"kept {share:.3f} of the units, scaled by {scale:.4g}" +
                            ("" if right else f" (inverted dropout scales by 1/{keep:g} = {1 / keep:.4g})")))
        if convention == "drop":
            text = (f"p taken as the drop probability (the 2016-17 convention): kept with probability 1 - p")
            if newer:
                checks.append(Check(f"convention p [{label}]", False, text + " in a 2018+ file (it has layer or "
                                    "group norm), where p is the keep probability"))
                found.say(text + " in a 2018+ file (it has layer or group norm), where p is the keep probability")
            else:
                found.notes.append(text + ", as this file's year has it (no layer or group norm): accepted")
        elif not newer:
            found.notes.append("p taken as the keep probability (2018+), in a file without layer or group norm: "
                               "accepted")
    found.add(checks, general)


def _dropout_backward(s, found: Findings, general: bool) -> None:
    record, call = s.record, s.call
    out, x, dout = record.get("output"), call.inputs["x"], call.grad_output
    grad = (record.get("grads") or {}).get("x")
    if out is None or tuple(out.shape) != tuple(x.shape):
        found.add([Check(f"gradient dx [{call.label}]", False, "its forward gives no output to take the mask from")],
                  general)
        return
    found.add(_judge("gradient", "dx", call.label, grad, (record.get("grad_info") or {}).get("x", {}),
                     dout * out / x, found.near), general)


def _blocked(function, s, found: Findings) -> bool:
    """A backward whose forward raised or gave no output: no cache to run it on."""
    why = s.record.get("blocked")
    if not why:
        return False
    error = s.record.get("error")
    advice = drift.advice(error) if error else None
    found.add([Check(f"type blocked [{s.call.label}]", False, f"not run: {why}")], s.call.case not in DECISIVE)
    found.say(f"blocked: {why}, so there is no cache to run it on" + (f" ({advice})" if advice else ""))
    return True


def analyse(function, calls_: list[Call], result, settings) -> FunctionResult:
    """Checks, status and diagnoses of one cs231n function (see the module doc)."""
    try:
        return _analyse(function, calls_, result, settings)
    except Exception as error:  # noqa: BLE001 - a bug of the checker's: this function's grading error
        from ..analysis import checker_failure
        return checker_failure(function.name, error)


def _judge_call(function, s) -> Findings:
    """The findings of one call that returned (or raised)."""
    found = Findings()
    general = s.call.case not in DECISIVE
    if _blocked(function, s, found):
        return found
    if s.error:
        found.add([Check(f"type error [{s.call.label}]", False, f"raises {error_text(s.error)}")], general)
        found.say(_error_diagnosis(s.error, s.call.label))
        return found
    if function.kind in ("forward", "loss"):
        _forward_checks(function, s, found, general)
    if function.kind in ("backward", "loss"):
        _gradient_checks(function, s, found, general)
    _arguments(s, found, general)
    if found.near and function.op in ("cs231n.batchnorm", "cs231n.spatial_batchnorm"):
        found.causes.append(EPS_OUTSIDE if eps_outside(s, found.near) else None)
    if function.op == "cs231n.softmax_loss" and s.call.case == "large logits":
        finite = s.record.get("output") is not None and bool(torch.isfinite(s.record["output"]).all())
        found.add([Check(f"finite loss [{s.call.label}]", finite, "finite" if finite else "inf or nan")], general)
        if not finite:
            found.say(f"overflow: the row max is not subtracted before exp, so scores near 1000 give inf/nan "
                      f"(at {s.call.label})")
    return found


def _spelling(label: str) -> str:
    """The case a call spells one way of several (group norm's gamma (C,) or (1, C, 1, 1)): its label without it."""
    return label.split(", gamma ")[0]


def _spelled(label: str) -> str:
    """How the call spells its case (``gamma (C,)``), or its whole label."""
    return "gamma " + label.split(", gamma ")[1] if ", gamma " in label else label


def _merged(per_call: list[tuple]) -> Findings:
    """Every call's findings; of calls that spell one case in several ways, the first that passes stands for the
    case (with a note of the ways that fail), else all of them."""
    found, groups = Findings(), {}
    for s, one in per_call:
        groups.setdefault(_spelling(s.call.label), []).append((s, one))
    for members in groups.values():
        passing = [(s, one) for s, one in members if all(c.passed for c in one.checks)]
        chosen = passing[:1] if passing and len(members) > 1 else members
        for s, one in chosen:
            found.merge(one)
            found.calls.append(s)
        failing = [_spelled(s.call.label) for s, one in members
                   if not all(c.passed for c in one.checks)] if chosen != members else []
        note = f"passes with {_spelled(chosen[0][0].call.label)}, not with {', '.join(failing)}: accepted (the " \
               f"handouts spell it both ways)"
        if failing and note not in found.notes:
            found.notes.append(note)
    return found


def _analyse(function, calls_: list[Call], result, settings) -> FunctionResult:
    seen = seen_calls(calls_, result)
    judged = [s for s in seen if s.fate.judged and s.record is not None]
    found = _merged([(s, _judge_call(function, s)) for s in judged])
    strict = getattr(settings, "strict", False)
    if function.kind == "forward" and function.op in ("cs231n.batchnorm", "cs231n.spatial_batchnorm"):
        for text in running_statistics_diagnoses(function, judged):
            found.say(text)
    if strict:      # the general cases count as the assignment's: in the status, and in a rubric as their kind
        found.checks = [replace(c, name=c.name.removeprefix("general ")) for c in found.checks]
    decisive = [c for c in found.checks if not c.name.startswith("general ")]
    general_failures = [c for c in found.checks if c.name.startswith("general ") and not c.passed]
    if general_failures:
        found.notes.append(f"fails {len(general_failures)} check(s) on the general cases (not the assignment's): "
                           f"reported, not failed (--strict fails them): "
                           + "; ".join(f"{c.name.removeprefix('general ')}: {c.detail}" for c in general_failures[:3]))
    if result.ended in ("timeout", "crashed"):
        status = result.ended
    elif result.ended == "environment":
        status = GRADING_ERROR
    elif result.ended == "import":
        status = "error"
    elif any(s.error for s in found.calls if strict or s.call.case in DECISIVE):
        status = "error"    # an exception (or a forward that blocks its backward) is what to fix first
    else:
        status = "pass" if decisive and all(c.passed for c in decisive) else "fail"
    returned = [s for s in judged if not s.error and not s.record.get("blocked")]
    if status != "pass" and returned and _all_none(function, returned):
        found.diagnoses.insert(0, "returns None: the body is still `pass` (the TODO is not done), or it computes a "
                                  "result without returning it")
    if status != "pass" and not found.diagnoses:
        failing = [c for c in decisive if not c.passed]
        found.diagnoses += [f"{c.name}: {c.detail}" for c in failing[:3]]
    if result.import_error is not None:
        found.diagnoses.insert(0, drift.import_text(result.import_error))
    return FunctionResult(function.name, status, found.checks, diagnoses=found.diagnoses,
                          notes=found.convention_notes() + found.notes,
                          seconds=result.seconds, output=result.output,
                          not_checked=[{"name": s.call.label, "detail": s.fate.reason or "not run"}
                                       for s in seen if not s.fate.judged],
                          calls=[{"name": s.call.label, "state": s.fate.state,
                                  "seconds": None if s.fate.seconds is None else round(s.fate.seconds, 4)}
                                 for s in seen])


def _all_none(function, returned) -> bool:
    if function.kind == "forward":
        return all(s.info.get("type") == "NoneType" for s in returned)
    infos = [info for s in returned for info in (s.record.get("grad_info") or {}).values()]
    return bool(infos) and all(info.get("type") == "NoneType" for info in infos)


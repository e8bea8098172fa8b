"""Forward/backward pairs (the cs231n form): the calls the checker makes of each, and how it judges them.

Calls. Every function is called on the assignment's own cases (the notebooks' shapes and
parameters: square inputs, stride 2 pad 1 and stride 1 pad 1 convolutions, 2x2 stride 2 pooling,
batch norm on ``5 randn + 12``), which decide pass or fail, and on general cases (non-square
inputs and kernels, a stride other than the kernel, overlapping pool windows, pad 0 and 2, N = 1),
which are reported and decide only under ``--strict``. Max pooling also gets tied maxima (integer
inputs), softmax_loss scores near 1000, batch norm and dropout their test mode: those decide too.
A backward is called on the cache its own forward returned, on the same inputs, with a random
upstream gradient ``dout``; a loss returns its gradient of the averaged loss.

Checks (the first word is the kind a rubric counts; general cases' checks start with "general"):

type         the function returns an array where the API has one (not None)
shape        each returned array has native's shape
values       out (or the loss), and batch norm's running statistics written back, against native
             PyTorch in float64: equal within 1e-9 (relative to the largest entry) passes; within
             1e-5 passes with a note (a convention: eps outside the square root); beyond fails
gradient     each returned gradient against autograd of the native forward with the same dout
consistency  each returned gradient against central differences of the candidate's own forward
arguments    no argument changed in place (the running statistics a forward writes back, and
             keys a forward adds to its parameter dict, are allowed)
finite       softmax_loss stays finite at large scores

Dropout is random, so it is judged by what its output must be: each entry 0 or x / p_keep, the
share kept p_keep (within 5 binomial standard deviations), test mode the identity, and the
backward ``dout * mask`` with the mask its own forward drew. Which probability p is (the drop
probability in 2016-17 files, the keep probability from 2018, told by layer or group norm being
defined) is said; the other convention fails a 2018+ file.

Every finding is tested numerically against a hypothesis (dw transposed, db not summed, a missing
1/N, ...; see :func:`hypotheses`), and an exception is explained by :mod:`.drift` when it is code
written for older Python or NumPy.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F

from . import drift
from .analysis import GRADING_ERROR, Check, FunctionResult, seen_calls
from .forms.cs231n import CONVENTION, EQUAL, FUNCTIONS
from .oracle import truth_of
from .plans import Call, Draw, ref
from .text import error_text, first_line, where

DECISIVE = ("assignment", "ties", "large logits", "test mode")

# ----------------------------------------------------------------------------- the calls


def _normal(draw: Draw, *shape, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return draw.normal(*shape, dtype=torch.float64) * scale + shift


def _cases(op: str, draw: Draw) -> list[tuple]:
    """(case, label, inputs, options, candidate's arguments after the arrays) of one op."""
    n = lambda *s, **k: _normal(draw, *s, **k)    # noqa: E731 - a short name for the table
    if op == "cs231n.affine":
        def affine(x_shape, m):
            d = math.prod(x_shape[1:])
            return {"x": n(*x_shape), "w": n(d, m), "b": n(m)}, {}, ()
        return [("assignment", "x (2, 4, 5, 6) -> 3", *affine((2, 4, 5, 6), 3)),
                ("assignment", "x (10, 2, 3), w (6, 5)", *affine((10, 2, 3), 5)),
                ("general", "N=1 x (1, 7) -> 4", *affine((1, 7), 4)),
                ("general", "square x (3, 4), w (4, 4)", *affine((3, 4), 4))]
    if op == "cs231n.relu":
        return [("assignment", "x (3, 4)", {"x": torch.linspace(-0.5, 0.5, 12, dtype=torch.float64).reshape(3, 4)},
                 {}, ()),
                ("assignment", "x (10, 10)", {"x": n(10, 10)}, {}, ()),
                ("general", "N=1 x (1, 2, 3, 3)", {"x": n(1, 2, 3, 3)}, {}, ())]
    if op == "cs231n.conv":
        def conv(x_shape, w_shape, stride, pad):
            param = {"stride": stride, "pad": pad}
            return {"x": n(*x_shape), "w": n(*w_shape), "b": n(w_shape[0])}, param, (param,)
        return [("assignment", "x (2, 3, 4, 4), w (3, 3, 4, 4), stride 2, pad 1", *conv((2, 3, 4, 4), (3, 3, 4, 4), 2, 1)),
                ("assignment", "x (4, 3, 5, 5), w (2, 3, 3, 3), stride 1, pad 1", *conv((4, 3, 5, 5), (2, 3, 3, 3), 1, 1)),
                ("general", "non-square x (2, 2, 7, 5), w (3, 2, 3, 2), stride 2, pad 0",
                 *conv((2, 2, 7, 5), (3, 2, 3, 2), 2, 0)),
                ("general", "N=1 x (1, 2, 5, 5), w (2, 2, 3, 3), stride 1, pad 2", *conv((1, 2, 5, 5), (2, 2, 3, 3), 1, 2)),
                ("general", "x (2, 1, 8, 7), w (2, 1, 2, 3), stride 3, pad 1", *conv((2, 1, 8, 7), (2, 1, 2, 3), 3, 1))]
    if op == "cs231n.max_pool":
        def pool(x, height, width, stride):
            param = {"pool_height": height, "pool_width": width, "stride": stride}
            return {"x": x}, param, (param,)
        ties = torch.randint(0, 3, (2, 2, 4, 4), generator=draw.generator).to(torch.float64)
        return [("assignment", "x (2, 3, 4, 4), 2x2 stride 2", *pool(n(2, 3, 4, 4), 2, 2, 2)),
                ("assignment", "x (3, 2, 8, 8), 2x2 stride 2", *pool(n(3, 2, 8, 8), 2, 2, 2)),
                ("ties", "tied maxima x (2, 2, 4, 4) in 0..2, 2x2 stride 2", *pool(ties, 2, 2, 2)),
                ("general", "overlapping x (2, 2, 7, 7), 3x3 stride 2", *pool(n(2, 2, 7, 7), 3, 3, 2)),
                ("general", "N=1 non-square x (1, 2, 5, 6), 2x3 stride 1", *pool(n(1, 2, 5, 6), 2, 3, 1))]
    if op in ("cs231n.batchnorm", "cs231n.spatial_batchnorm"):
        def norm(x, mode="train", momentum=0.9, eps=1e-5):
            c = x.shape[1]
            inputs = {"x": x, "gamma": n(c), "beta": n(c), "running_mean": n(c), "running_var": n(c).abs() + 0.5}
            param = {"mode": mode, "eps": eps, "momentum": momentum, "running_mean": ref("running_mean"),
                     "running_var": ref("running_var")}
            return inputs, {"mode": mode, "eps": eps, "momentum": momentum}, (param,)
        if op == "cs231n.batchnorm":
            return [("assignment", "x (4, 5) = 5 randn + 12", *norm(n(4, 5, scale=5, shift=12))),
                    ("assignment", "x (50, 6) = 2 randn - 1, momentum 0.8", *norm(n(50, 6, scale=2, shift=-1), momentum=0.8)),
                    ("test mode", "test mode x (4, 5)", *norm(n(4, 5, scale=5, shift=12), "test")),
                    ("general", "x (16, 3) = 3 randn + 1", *norm(n(16, 3, scale=3, shift=1)))]
        return [("assignment", "x (2, 3, 4, 5) = 5 randn + 12", *norm(n(2, 3, 4, 5, scale=5, shift=12))),
                ("test mode", "test mode x (2, 3, 4, 5)", *norm(n(2, 3, 4, 5, scale=4, shift=10), "test")),
                ("general", "N=1 x (1, 2, 3, 3) = 3 randn + 1", *norm(n(1, 2, 3, 3, scale=3, shift=1)))]
    if op == "cs231n.layernorm":
        def layer(x, eps=1e-5):
            return {"x": x, "gamma": n(x.shape[1]), "beta": n(x.shape[1])}, {"eps": eps}, ({"eps": eps},)
        return [("assignment", "x (4, 5) = 5 randn + 12", *layer(n(4, 5, scale=5, shift=12))),
                ("general", "N=1 x (1, 7)", *layer(n(1, 7, scale=2))),
                ("general", "x (3, 8), eps 1e-3", *layer(n(3, 8), 1e-3))]
    if op == "cs231n.groupnorm":
        def group(x, groups, shape):
            c = x.shape[1]
            inputs = {"x": x, "gamma": n(c).reshape(shape(c)), "beta": n(c).reshape(shape(c))}
            return inputs, {"G": groups, "eps": 1e-5}, (groups, {"eps": 1e-5})
        x = n(2, 6, 4, 5, scale=5, shift=12)
        return [("assignment", "x (2, 6, 4, 5), G = 2, gamma (1, C, 1, 1)", *group(x, 2, lambda c: (1, c, 1, 1))),
                ("assignment", "x (2, 6, 4, 5), G = 2, gamma (C,)", *group(x.clone(), 2, lambda c: (c,))),
                ("general", "N=1 x (1, 4, 3, 3), G = 4, gamma (1, C, 1, 1)", *group(n(1, 4, 3, 3), 4, lambda c: (1, c, 1, 1))),
                ("general", "N=1 x (1, 4, 3, 3), G = 4, gamma (C,)", *group(n(1, 4, 3, 3), 4, lambda c: (c,)))]
    if op == "cs231n.dropout":
        def dropout(x, p, mode, seed):
            return {"x": x}, {"mode": mode, "p": p}, ({"p": p, "mode": mode, "seed": seed},)
        return [*(("assignment", f"training x (100, 100) + 10, p {p}", *dropout(n(100, 100, shift=10), p, "train", 123))
                  for p in (0.25, 0.4, 0.7)),
                ("assignment", "backward x (10, 10) + 10, p 0.2, seed 123", *dropout(n(10, 10, shift=10), 0.2, "train", 123)),
                ("test mode", "test mode x (10, 10) + 10, p 0.4", *dropout(n(10, 10, shift=10), 0.4, "test", 123))]
    if op in ("cs231n.softmax_loss", "cs231n.svm_loss"):
        def loss(n_, c, scale):
            return {"x": n(n_, c, scale=scale), "y": torch.randint(0, c, (n_,), generator=draw.generator)}, {}, ()
        large = [("large logits", "scores of about 1000, x (5, 4)", *loss(5, 4, 1000.0))] \
            if op == "cs231n.softmax_loss" else []
        return [("assignment", "x (50, 10) = 0.001 randn", *loss(50, 10, 0.001)), *large,
                ("general", "N=1 x (1, 5)", *loss(1, 5, 1.0))]
    raise ValueError(f"no cases for {op}")


def calls(function, settings) -> list[Call]:
    """The calls of one function of the cs231n form (see the module doc), the decisive ones first."""
    draw = Draw(settings.seed)
    found = []
    for case, label, inputs, options, extra in _cases(function.op, draw):
        args = tuple(ref(name) for name in inputs if name not in ("running_mean", "running_var")) + extra
        if function.op == "cs231n.dropout" and function.kind == "backward" and "backward" not in label \
                and options["mode"] == "train":
            continue    # the statistics need the large inputs, the backward its own case
        if function.op == "cs231n.dropout" and function.kind == "forward" and "backward" in label:
            continue
        if function.kind == "backward" and options.get("mode") == "test":
            continue    # a test-mode forward's cache is not for a backward
        call = Call(label, case, function.op, inputs, options, args, stage="graded" if case in DECISIVE else "sizes",
                    shapes="graded" if case in DECISIVE else "small",
                    updates=("running_mean", "running_var") if "running_mean" in inputs and options["mode"] == "train"
                    else ())
        if function.kind == "loss":
            call = replace(call, grad=function.grads, grad_output=torch.tensor(1.0, dtype=torch.float64))
        elif function.kind == "backward":
            shape = inputs["x"].shape if function.op == "cs231n.dropout" else _native_shape(call)
            call = replace(call, grad=function.grads, grad_output=_normal(draw, *shape))
        found.append(call)
    return found


def _native_shape(call: Call) -> tuple:
    from .forms import native_call
    with torch.no_grad():
        return tuple(native_call(call.op, {k: v.clone() for k, v in call.inputs.items()}, call.options).shape)


# ----------------------------------------------------------------------------- comparing


def relative(candidate: torch.Tensor, truth: torch.Tensor) -> float:
    """max |candidate - truth| over max |truth| (absolute where the truth is all 0); inf where not finite."""
    if not torch.isfinite(candidate).all():
        return math.inf
    scale = truth.abs().max().item() if truth.numel() else 0.0
    error = (candidate - truth).abs().max().item() if truth.numel() else 0.0
    return error / scale if scale > 0 else error


def close(candidate, truth, limit: float = CONVENTION) -> bool:
    return candidate is not None and truth is not None and tuple(candidate.shape) == tuple(truth.shape) and \
        relative(candidate.to(torch.float64), truth.to(torch.float64)) <= limit


def _shape(t) -> str:
    return str(tuple(t.shape))


def _judge(kind: str, name: str, label: str, candidate, info: dict, truth, near: list) -> list[Check]:
    """type, shape and values (or gradient) checks of one returned array against the truth; (name, label, error)
    appended to ``near`` where it is within 1e-5 but not equal (a convention: noted, see Findings.convention_notes)."""
    if candidate is None:
        what = "None" if info.get("type") == "NoneType" else f"a {info.get('type')}"
        return [Check(f"type {name} [{label}]", False, f"{name} is {what}, not an array")]
    checks = [Check(f"type {name} [{label}]", True, "an array")]
    if tuple(candidate.shape) != tuple(truth.shape):
        return checks + [Check(f"shape {name} [{label}]", False, f"{name} has shape {_shape(candidate)}, native "
                                                                  f"{_shape(truth)}")]
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
        from .analysis import checker_failure
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
        found.causes.append(EPS_OUTSIDE if _eps_outside(s, found.near) else None)
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
    decisive = [c for c in found.checks if strict or not c.name.startswith("general ")]
    general_failures = [c for c in found.checks if c.name.startswith("general ") and not c.passed]
    if general_failures and not strict:
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


# ----------------------------------------------------------------------------- why: hypotheses tested numerically


def _says(text: str, s) -> str:
    return f"{text} (at {s.call.label})"


def hypotheses(function, s, output: str) -> list[str]:
    """The likely mistakes that explain a wrong ``output`` ("out" or an input name whose gradient is wrong): each
    one's prediction computed from the truth and compared with what the candidate returned."""
    truth = truth_of(s.call).exact
    inputs, options = s.call.inputs, s.call.options
    record = s.record
    got = record.get("output") if output == "out" else (record.get("grads") or {}).get(output)
    want = truth.output if output == "out" else truth.grads[output]
    found = []

    def test(prediction, text, against=None):
        """Say ``text`` when the candidate's output (or ``against``, a transform of it) is the prediction."""
        against = got if against is None else against
        try:
            ok = prediction is not None and close(against.to(torch.float64), prediction)
        except (RuntimeError, ValueError, TypeError):
            ok = False
        if ok:
            found.append(_says(text, s))

    n = inputs["x"].shape[0]
    op = function.op
    if output == "out":
        if op in ("cs231n.batchnorm", "cs231n.spatial_batchnorm"):
            _batchnorm_forward_hypotheses(s, test, truth)
        return found
    if op == "cs231n.affine":
        if output == "w":
            test(want, "dw is transposed: shape (M, D), and dw.T is the right gradient", got.T if got.dim() == 2 else None)
            test(truth.grads["x"].reshape(want.shape) if truth.grads["x"].numel() == want.numel() else None,
                 "dx and dw are swapped: the first output is the gradient of w, the second of x")
        if output == "x" and (record.get("grads") or {}).get("x") is not None:
            got_x = record["grads"]["x"]
            if tuple(got_x.shape) == tuple(truth.grads["w"].shape) and close(got_x, truth.grads["w"]):
                found.append(_says("dx and dw are swapped: the first output is the gradient of w, the second of x", s))
        if output == "b" and got.dim() == 2 and got.shape[0] == n:
            test(want, "db is not summed over the batch: shape (N, M), its sum over axis 0 is right", got.sum(0))
    if op == "cs231n.conv":
        pad, stride = options["pad"], options["stride"]
        if output == "b":
            if got.dim() == 3:
                test(want, "db is not summed over the output positions: shape (F, H', W'), its sum over axes 1, 2 is "
                           "right", got.sum((1, 2)))
            if got.dim() == 2:
                test(want, "db is not summed over the batch: shape (N, F), its sum over axis 0 is right", got.sum(0))
            if got.dim() == 4:
                test(want, "db is not summed over the batch and the positions", got.sum((0, 2, 3)))
        if output == "x":
            if got.numel() == 0 and pad == 0:
                found.append(_says("at pad 0 dx is empty (dx_pad[:, :, pad:-pad] with pad = 0 is an empty slice): "
                                   "crop with pad:pad + H", s))
            if got.dim() == 4 and got.shape[2] == want.shape[2] + 2 * pad and pad > 0:
                test(want, "dx still has its padding: shape (N, C, H + 2 pad, W + 2 pad); cropping pad off each side "
                           "gives the right gradient", got[:, :, pad:-pad, pad:-pad])
            if stride > 1:
                test(_stride_ignored(s, want), "dx ignores the stride (each window taken at (i, j), not (i stride, "
                                               "j stride)); right at stride 1, as in the notebook's gradient check")
    if op in ("cs231n.softmax_loss", "cs231n.svm_loss", "cs231n.batchnorm", "cs231n.spatial_batchnorm") \
            and output == "x":
        count = n if op != "cs231n.spatial_batchnorm" else n * inputs["x"][0, 0].numel()
        test(want * count, f"d{output} is missing the 1/N of the average: N times too large")
        test(want / count, f"d{output} has an extra 1/N: N times too small")
        if op in ("cs231n.batchnorm", "cs231n.spatial_batchnorm"):
            _batchnorm_backward_hypotheses(s, test, truth)
    if op in ("cs231n.batchnorm", "cs231n.layernorm", "cs231n.spatial_batchnorm") and output in ("gamma", "beta") \
            and got.dim() == 1 and got.shape[0] == n and inputs["x"].dim() == 2:
        x_hat = _normalised(inputs["x"], s.call.options.get("eps", 1e-5))
        dout = s.call.grad_output
        test((dout * x_hat).sum(1) if output == "gamma" else dout.sum(1),
             "dgamma and dbeta are summed over the features (axis 1, shape (N,)) instead of over the batch (axis 0)")
    if op == "cs231n.relu":
        x, dout = inputs["x"], s.call.grad_output
        test(dout * (dout > 0), "the ReLU mask is taken from dout (dout > 0), not from the input x")
        test(dout * (x < 0), "the ReLU mask has the wrong sign: the gradient passes where x < 0")
    if op == "cs231n.max_pool":
        test(_pool_every_tie(s), "a window's gradient goes to every entry tied for its maximum (PyTorch sends it "
                                 "to one)")
        test(_pool_overwritten(s), "where windows overlap (stride < pool size) a window's gradient overwrites "
                                   "another's instead of adding to it")
    return found


def _normalised(x, eps):
    return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps)


def _stride_ignored(s, want):
    """dx when every window is taken at (i, j) instead of (i stride, j stride)."""
    w, dout, pad = s.call.inputs["w"], s.call.grad_output, s.call.options["pad"]
    height, width = want.shape[2], want.shape[3]
    full = F.conv_transpose2d(dout, w)          # windows at (i, j): [N, C, H' + HH - 1, W' + WW - 1]
    padded = torch.zeros(want.shape[0], want.shape[1], height + 2 * pad, width + 2 * pad, dtype=torch.float64)
    h, w_ = min(full.shape[2], padded.shape[2]), min(full.shape[3], padded.shape[3])
    padded[:, :, :h, :w_] = full[:, :, :h, :w_]
    return padded[:, :, pad:pad + height, pad:pad + width]


def _windows(s):
    x, options = s.call.inputs["x"], s.call.options
    ph, pw, stride = options["pool_height"], options["pool_width"], options["stride"]
    out_h, out_w = 1 + (x.shape[2] - ph) // stride, 1 + (x.shape[3] - pw) // stride
    for i in range(out_h):
        for j in range(out_w):
            yield i, j, slice(i * stride, i * stride + ph), slice(j * stride, j * stride + pw)


def _pool_every_tie(s):
    x, dout = s.call.inputs["x"], s.call.grad_output
    dx = torch.zeros_like(x)
    for i, j, rows, cols in _windows(s):
        window = x[:, :, rows, cols]
        top = window.amax((2, 3), keepdim=True)
        dx[:, :, rows, cols] += (window == top) * dout[:, :, i, j][:, :, None, None]
    return dx


def _pool_overwritten(s):
    x, dout = s.call.inputs["x"], s.call.grad_output
    dx = torch.zeros_like(x)
    n, c = x.shape[:2]
    for i, j, rows, cols in _windows(s):
        window = x[:, :, rows, cols].reshape(n, c, -1)
        index = window.argmax(2)
        width = cols.stop - cols.start
        for a in range(n):
            for b in range(c):
                u, v = divmod(int(index[a, b]), width)
                dx[a, b, rows.start + u, cols.start + v] = dout[a, b, i, j]
    return dx


def _bn_axes(s):
    return (0, 2, 3) if s.call.op == "cs231n.spatial_batchnorm" else (0,)


def _bn_shape(s):
    return (1, -1, 1, 1) if s.call.op == "cs231n.spatial_batchnorm" else (1, -1)


EPS_OUTSIDE = "eps added outside the square root (sqrt(var) + eps, not sqrt(var + eps)): the difference is about eps / std"


def _eps_outside(s, near: list) -> bool:
    """Whether every output within 1e-5 of native (``near``) is what batch norm with eps outside the square root
    gives: its forward and, for the gradients, either autograd of that forward or the usual backward (derived for
    sqrt(var + eps)) run on a cache whose std is sqrt(var) + eps."""
    got = {"out": s.record.get("output")} | {f"d{k}": v for k, v in (s.record.get("grads") or {}).items()}
    return any(all(name in predicted and close(got.get(name), predicted[name], EQUAL * 1e3) for name, _, _ in near)
               for predicted in (_eps_outside_prediction(s, False), _eps_outside_prediction(s, True)))


def _eps_outside_prediction(s, in_cache: bool) -> dict:
    """out, dx, dgamma, dbeta of batch norm with std = sqrt(var) + eps; ``in_cache``: the gradients of the usual
    backward given that std (std written sqrt(var + c) with c = std^2 - var held constant)."""
    inputs, options = s.call.inputs, s.call.options
    x, gamma, beta = (inputs[k].detach().clone().requires_grad_() for k in ("x", "gamma", "beta"))
    axes, shape = _bn_axes(s), _bn_shape(s)
    if options["mode"] == "train":
        mean, var = x.mean(axes), x.var(axes, unbiased=False)
    else:
        mean, var = inputs["running_mean"], inputs["running_var"]
    std = var.sqrt() + options["eps"]
    if in_cache:
        std = torch.sqrt(var + (std ** 2 - var).detach())
    out = gamma.reshape(shape) * (x - mean.reshape(shape)) / std.reshape(shape) + beta.reshape(shape)
    predicted = {"out": out.detach()}
    if s.call.grad_output is not None and s.call.grad:
        grads = torch.autograd.grad(out, (x, gamma, beta), s.call.grad_output)
        predicted |= {f"d{k}": g for k, g in zip(("x", "gamma", "beta"), grads)}
    return predicted


def _batchnorm_forward_hypotheses(s, test, truth) -> None:
    inputs, options = s.call.inputs, s.call.options
    x, gamma, beta = inputs["x"], inputs["gamma"], inputs["beta"]
    eps, momentum = options["eps"], options["momentum"]
    shape = _bn_shape(s)
    if options["mode"] == "train":
        axes = _bn_axes(s)
        mean, var = x.mean(axes), x.var(axes, unbiased=False)
        out = gamma.reshape(shape) * (x - mean.reshape(shape)) / (var.reshape(shape).sqrt() + eps) + beta.reshape(shape)
        test(out, "eps added outside the square root (sqrt(var) + eps): a convention within 1e-5 on the notebook's "
                  "data; the difference is about eps / std")
        if s.call.op == "cs231n.spatial_batchnorm":
            for axes_, text in (((2, 3), "normalises each sample's channel over its own positions (axes 2, 3) instead "
                                         "of each channel over the batch and positions (axes 0, 2, 3)"),
                                ((0,), "normalises each position over the batch alone (axis 0) instead of each channel "
                                       "over the batch and positions (axes 0, 2, 3)")):
                m, v = x.mean(axes_, keepdim=True), x.var(axes_, unbiased=False, keepdim=True)
                test(gamma.reshape(shape) * (x - m) / torch.sqrt(v + eps) + beta.reshape(shape), text)


def _batchnorm_backward_hypotheses(s, test, truth) -> None:
    inputs, options = s.call.inputs, s.call.options
    x, gamma, dout = inputs["x"], inputs["gamma"], s.call.grad_output
    axes, shape = _bn_axes(s), _bn_shape(s)
    std = torch.sqrt(x.var(axes, unbiased=False) + options["eps"]).reshape(shape)
    x_hat = (x - x.mean(axes).reshape(shape)) / std
    dx_hat = dout * gamma.reshape(shape)
    test(dx_hat / std, "dx treats the batch mean and variance as constants: dx = gamma dout / std, the terms through "
                       "the mean and the variance missing")
    test((dx_hat - dx_hat.sum(axes, keepdim=True) - x_hat * (dx_hat * x_hat).sum(axes, keepdim=True)) / std,
         "dx: the batch-mean terms are summed, not averaged (a missing 1/N)")


def running_statistics_diagnoses(function, seen_: list) -> list[str]:
    """The running statistics written back with PyTorch's momentum convention, tested on each training call."""
    found = []
    for s in seen_:
        if s.record is None or not s.call.updates:
            continue
        momentum = s.call.options["momentum"]
        axes = _bn_axes(s)
        batch = {"running_mean": s.call.inputs["x"].mean(axes), "running_var": s.call.inputs["x"].var(axes, unbiased=False)}
        for key in s.call.updates:
            got = (s.record.get("updated") or {}).get(key)
            if got is not None and close(got, (1 - momentum) * s.call.inputs[key] + momentum * batch[key], EQUAL) \
                    and not close(got, truth_of(s.call).exact.updated[key], EQUAL):
                found.append(_says("the running statistics use PyTorch's momentum convention, running = (1 - momentum) "
                                   "running + momentum batch; the handout's is momentum running + (1 - momentum) batch",
                                   s))
                return found
    return found


__all__ = ["FUNCTIONS", "analyse", "calls", "close", "first_line", "hypotheses", "relative"]

"""Judge an instructor's mapped functions (:mod:`.adapter`) from what the child recorded, against native PyTorch.

Native's output and its gradients (autograd of the op on the call's float64 inputs, back-propagating
the call's upstream gradient) are the truth. A wrong output is tested against the op's likely
mistakes (:mod:`..hypotheses`); a wrong gradient against the mistakes of :func:`gradient_mistakes`.
Findings are codes as in the corpora's manifests: the name of the wrong output or gradient
("output", "input", "weight"...), "zeros:NAME", "blocked", "error:TYPE".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...compare import compare
from ..hypotheses import hypotheses
from .ops import OPS, native_call
from .verdict import Verdict, compared, detail, placeholder_zeros, result_of


def truth(call) -> tuple[torch.Tensor, dict]:
    """(native's output, {input: gradient}) of a call; the gradients only when it has an upstream gradient."""
    op = OPS[call.op]
    leaves = {name: None if value is None else value.detach().to(torch.float64).requires_grad_(
        call.grad_output is not None and name in op.differentiable) for name, value in call.inputs.items()}
    out = native_call(call.op, leaves, call.options)
    if call.grad_output is None:
        return out.detach(), {}
    wanted = [name for name, value in leaves.items() if value is not None and value.requires_grad]
    grads = torch.autograd.grad(out, [leaves[n] for n in wanted], call.grad_output.to(torch.float64))
    return out.detach(), dict(zip(wanted, grads))


def _fits(predicted, got) -> bool:
    return predicted is not None and got is not None and predicted.shape == got.shape and \
        compare(predicted, got, dtype=torch.float64).passed


def output_mistake(call, got: torch.Tensor) -> str | None:
    """The first likely mistake of the op whose native variant gives ``got``."""
    inputs = {k: None if v is None else v.to(torch.float64) for k, v in call.inputs.items()}
    for hypothesis in hypotheses(call.op, inputs, call.options):
        if hypothesis.pair_only or hypothesis.interior:
            continue
        try:
            predicted = hypothesis.predict(dict(inputs), dict(call.options))
        except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError):
            continue
        if _fits(predicted, got):
            return f"{hypothesis.text}: the output matches native with that change"
    return None


def _pool_routed(call, row_stride: bool, column_stride: bool) -> torch.Tensor | None:
    """Max pooling's input gradient with each window's gradient sent to its maximum's offset from the window's
    corner added to i (not i * stride) for rows without ``row_stride``, likewise for columns."""
    options = call.options
    k, stride = options["kernel_size"], options.get("stride") or options["kernel_size"]
    x = call.inputs["input"].to(torch.float64)
    n, c, h, w = x.shape
    _, indices = F.max_pool2d(x, k, stride, return_indices=True)
    ho, wo = indices.shape[2:]
    rows, cols = indices // w, indices % w
    i = torch.arange(ho).reshape(1, 1, -1, 1)
    j = torch.arange(wo).reshape(1, 1, 1, -1)
    rows = rows - i * stride + (i * stride if row_stride else i)
    cols = cols - j * stride + (j * stride if column_stride else j)
    grad = torch.zeros(n, c, h * w, dtype=torch.float64)
    grad.scatter_add_(2, (rows * w + cols).reshape(n, c, -1), call.grad_output.to(torch.float64).reshape(n, c, -1))
    return grad.reshape(n, c, h, w)


def gradient_mistakes(call, name: str, expected: torch.Tensor) -> list[tuple[str, object]]:
    """(text, the gradient it gives, or a function of the gradient that came back) of the usual backward mistakes."""
    found = [("its sign is flipped", -expected)]
    if expected.dim() == 2:
        found.append(("it is transposed", expected.T))
    if name == "bias" and call.grad_output.dim() >= 2:
        found.append(("it is not summed over the batch (one row per sample)",
                      call.grad_output.to(torch.float64).sum(tuple(range(2, call.grad_output.dim())))))
    if call.op == "max_pool2d" and name == "input":
        stride = call.options.get("stride") or call.options["kernel_size"]
        if stride != 1:
            for rows, columns, where in ((True, False, "column j + col, not j stride + col (rows right)"),
                                         (False, True, "row i + row, not i stride + row (columns right)"),
                                         (False, False, "row i + row and column j + col, without the stride")):
                found.append((f"each window's gradient lands in {where}: a wrong index, right at stride 1 only",
                              _pool_routed(call, rows, columns)))
    return found


def _mistaken_forward_gradient(call, name: str, got: torch.Tensor) -> str | None:
    """The backward of a forward with one of the op's likely mistakes, if that is what ``got`` is."""
    inputs = {k: None if v is None else v.detach().to(torch.float64) for k, v in call.inputs.items()}
    for hypothesis in hypotheses(call.op, inputs, call.options):
        if hypothesis.pair_only or hypothesis.interior:
            continue
        leaves = {k: None if v is None else v.clone().requires_grad_(k == name) for k, v in inputs.items()}
        try:
            out = hypothesis.predict(leaves, dict(call.options))
            if out is None or out.shape != call.grad_output.shape or not out.requires_grad:
                continue
            (grad,) = torch.autograd.grad(out, [leaves[name]], call.grad_output.to(torch.float64))
        except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError):
            continue
        if _fits(grad, got):
            return f"it is the gradient of a forward in which {hypothesis.text}"
    return None


def gradient_diagnosis(call, name: str, expected: torch.Tensor, got: torch.Tensor) -> str | None:
    for text, predicted in gradient_mistakes(call, name, expected):
        if _fits(predicted, got):
            return f"the gradient w.r.t. {name} is wrong: {text}"
    if got.shape == expected.shape and expected.abs().max() > 0:
        scale = (got * expected).sum().item() / (expected * expected).sum().item()
        if abs(scale - 1) > 1e-3 and _fits(expected * scale, got):
            return f"the gradient w.r.t. {name} is wrong: it is native's times {scale:.4g}"
    text = _mistaken_forward_gradient(call, name, got)
    return None if text is None else f"the gradient w.r.t. {name} is wrong: {text}"


def _error(record: dict) -> str:
    error = record["error"]
    return f"raises {error['type']}: {str(error.get('message', '')).splitlines()[0] if error.get('message') else ''}"


def judge_call(function, call, record: dict, verdict: Verdict) -> None:
    label = call.case
    if record.get("blocked"):
        verdict.check("values", "gradients", label, False, f"not run: {record['blocked']}")
        verdict.find(label, "blocked", f"not run: {record['blocked']}, so there is nothing to run the backward on")
        return
    if record.get("error"):
        verdict.check("values", "output", label, False, _error(record))
        verdict.find(label, f"error:{record['error']['type']}", _error(record))
        return
    if record.get("unreadable"):
        verdict.check("type", "output", label, False, record["unreadable"])
        verdict.find(label, "type", record["unreadable"])
        return
    out, grads = truth(call)
    if function.kind == "backward":
        wanted = {name: grads[name] for name in function.grads if name in grads}
        found = record.get("grads", {})
    else:
        wanted, found = {"output": out}, {"output": record.get("output")}
    for name, expected in wanted.items():
        got = found.get(name)
        if got is None:
            info = (record.get("info") or {}).get(name, record.get("info") or {})
            verdict.check("type", name, label, False, f"returned {info.get('type', 'nothing')} for {name}")
            verdict.find(label, f"type:{name}")
            continue
        comparison = compared(expected, got)
        kind = "gradient" if function.kind == "backward" else "values"
        verdict.check(kind, name, label, comparison.passed, detail(comparison))
        if comparison.passed:
            continue
        if placeholder_zeros(got, expected):
            verdict.find(label, f"zeros:{name}", f"{name}: zeros of the expected size (a placeholder?): not "
                                                 f"implemented yet")
            continue
        got = got.to(torch.float64)
        text = output_mistake(call, got) if name == "output" else gradient_diagnosis(call, name, expected, got)
        verdict.find(label, name, text)
    if record.get("changed"):
        verdict.check("arguments", "unchanged", label, False, f"changed {', '.join(record['changed'])} in place")
        verdict.find(label, f"changes:{record['changed'][0]}", f"changes its argument {record['changed'][0]} in "
                                                               f"place: the layer before it loses its output")


def analyse(function, calls: list, result, settings):
    """The analysis.FunctionResult of one mapped function."""
    verdict = Verdict(bool(getattr(settings, "strict", False)))

    def judge(seen):
        for s in seen:
            judge_call(function, s.call, s.record, verdict)
        return []

    return result_of(function, calls, result, verdict, judge)

"""Likely mistakes, each a variant of native PyTorch that a wrong output can be tested against.

A hypothesis computes, from the call's inputs (float64) and options, what the op returns if it
has that mistake: the kernel flipped, the bias added twice, the windows shifted by one... The
checker runs every hypothesis of the op and reports those whose output matches the candidate's
by compare's rule, with both errors as evidence. Nothing is guessed from the source text.

A hypothesis returns None where it does not apply (a transposed kernel needs a square one).
``interior`` drops the outermost rows and columns of both before they are compared: a window
shifted by one row reads past the input's edge, where each implementation does something else, so
only the interior counts.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch.nn.functional as F

from .forms import native_call
from .text import pair


class Hypothesis(NamedTuple):
    text: str
    predict: Callable            # (inputs, options) -> tensor or None
    interior: bool = False       # compare without the outermost row and column


def _with(op: str, **changes) -> Callable:
    """Native ``op`` with some inputs or options replaced (a function of the inputs and options)."""
    def predict(inputs, options):
        new_inputs, new_options = dict(inputs), dict(options)
        for key, change in changes.items():
            target = new_inputs if key in inputs else new_options
            value = change(inputs, options) if callable(change) else change
            if value is _SKIP:
                return None
            target[key] = value
        return native_call(op, new_inputs, new_options)
    return predict


_SKIP = object()


def _square_kernel(transform):
    return lambda i, o: transform(i["weight"]) if i["weight"].shape[2] == i["weight"].shape[3] else _SKIP


def _bias_along(axis: int, op: str):
    """The op without bias, plus bias[k] at index k along ``axis`` (a loop that indexes the bias with the
    wrong loop variable); None where that axis is longer than the bias."""
    def predict(inputs, options):
        bias = inputs.get("bias")
        if bias is None:
            return None
        output = native_call(op, dict(inputs, bias=None), options)
        size = output.shape[axis] if output.dim() > axis else 0
        if not 0 < size <= bias.shape[0]:
            return None
        shape = [1] * output.dim()
        shape[axis] = size
        return output + bias[:size].reshape(shape)
    return predict


def _shifted(op: str, dy: int, dx: int):
    """Windows read one row/column off: the input rolled by (dy, dx) (Python's negative indices wrap)."""
    def predict(inputs, options):
        return native_call(op, dict(inputs, input=inputs["input"].roll((-dy, -dx), dims=(2, 3))), options)
    return predict


def _nudged(op: str, option: str, delta: int, minimum: int):
    def predict(inputs, options):
        default = options.get("kernel_size") if option == "stride" and options.get("stride") is None else None
        values = tuple(v + delta for v in pair(options.get(option) if default is None else default))
        if min(values) < minimum:
            return None
        try:
            return native_call(op, inputs, dict(options, **{option: values}))
        except RuntimeError:  # the shape no longer fits
            return None
    return predict


def _shifts(op: str) -> list[Hypothesis]:
    def text(dy, dx):
        moves = [f"{d:+d} {axis}" for d, axis in ((dy, "row"), (dx, "column")) if d]
        return f"the windows are read {' and '.join(moves)} away from where they should be (an index off by one)"
    return [Hypothesis(text(dy, dx), _shifted(op, dy, dx), interior=True)
            for dy, dx in ((1, 0), (0, 1), (1, 1), (-1, 0), (0, -1), (-1, -1))]


def _steps(op: str, options: tuple) -> list[Hypothesis]:
    return [Hypothesis(f"{option} {'one more' if delta > 0 else 'one less'} than asked", _nudged(op, option, delta, low))
            for option, low in options for delta in (1, -1)]


def _bias_mistakes(op: str, axes: dict) -> list[Hypothesis]:
    return [
        Hypothesis("the bias is missing", _with(op, bias=lambda i, o: None if i.get("bias") is not None else _SKIP)),
        Hypothesis("the bias is added twice", _with(op, bias=lambda i, o: 2 * i["bias"] if i.get("bias") is not None
                                                    else _SKIP)),
        *(Hypothesis(f"the bias is indexed by the {name} (bias[{index}]) instead of the output channel",
                     _bias_along(axis, op)) for axis, (name, index) in axes.items()),
    ]


def _pool_from_zero(inputs, options):
    """A running maximum that starts at 0: max(0, the window's maximum)."""
    return native_call("max_pool2d", inputs, options).clamp(min=0)


def _avg_pool(inputs, options):
    stride = options.get("stride") or options["kernel_size"]
    return F.avg_pool2d(inputs["input"], options["kernel_size"], stride, options.get("padding", 0),
                        count_include_pad=False)


def _min_pool(inputs, options):
    return -native_call("max_pool2d", dict(inputs, input=-inputs["input"]), options)


def _flatten_orders(inputs, options):
    """Per-sample orders of a [N, C, H, W] -> [N, C*H*W] reshape other than (C, H, W)."""
    return inputs["input"].dim() == 4 and options.get("start_dim", 1) in (1, -3) and options.get("end_dim", -1) in (-1, 3)


_ORDER_NAMES = {(3, 2, 1): "column-major (Fortran, numpy order='F') order within each sample",
                (2, 3, 1): "channel-last order (H, W, C)",
                (1, 3, 2): "rows and columns swapped (C, W, H)",
                (2, 1, 3): "order (H, C, W)", (3, 1, 2): "order (W, C, H)"}


def _flatten_permuted(order):
    def predict(inputs, options):
        if not _flatten_orders(inputs, options):
            return None
        x = inputs["input"]
        return x.permute(0, *order).reshape(x.shape[0], -1)
    return predict


def _linear_untransposed(inputs, options):
    weight = inputs["weight"]
    if weight.shape[0] != weight.shape[1]:
        return None
    out = inputs["input"] @ weight
    return out if inputs.get("bias") is None else out + inputs["bias"]


def _log_softmax_dims(inputs, options):
    dim = options["dim"] % inputs["input"].dim()
    return [Hypothesis(f"log_softmax along dim {d} instead of {dim}",
                       lambda i, o, d=d: native_call("log_softmax", i, dict(o, dim=d)))
            for d in range(inputs["input"].dim()) if d != dim]


def _naive_log_softmax(inputs, options):
    """exp, sum, log in float32 without subtracting the maximum first: overflows for large inputs."""
    x = inputs["input"].float()
    return (x.exp() / x.exp().sum(options["dim"], keepdim=True)).log().double()


def _nll_reduction(reduction):
    def predict(inputs, options):
        if options.get("reduction", "mean") == reduction:
            return None
        return native_call("nll_loss", inputs, dict(options, reduction=reduction))
    return predict


def _batch_norm_unbiased(inputs, options):
    if not options.get("training"):
        return None
    x = inputs["input"]
    dims = [0, *range(2, x.dim())]
    shape = [1, -1] + [1] * (x.dim() - 2)
    mean, var = x.mean(dims), x.var(dims, unbiased=True)
    out = (x - mean.reshape(shape)) / (var.reshape(shape) + options["eps"]).sqrt()
    if inputs.get("weight") is not None:
        out = out * inputs["weight"].reshape(shape) + inputs["bias"].reshape(shape)
    return out


def hypotheses(op: str, inputs: dict, options: dict) -> list[Hypothesis]:
    """The hypotheses that apply to ``op`` (some depend on the call, e.g. which dims exist)."""
    if op == "conv2d":
        return [
            Hypothesis("the kernel is flipped: a true convolution instead of PyTorch's cross-correlation",
                       _with(op, weight=lambda i, o: i["weight"].flip(2, 3))),
            Hypothesis("each filter is transposed (the kernel's rows and columns swapped)",
                       _with(op, weight=_square_kernel(lambda w: w.transpose(2, 3)))),
            Hypothesis("filters and input channels are swapped in the weight",
                       _with(op, weight=lambda i, o: i["weight"].transpose(0, 1)
                             if i["weight"].shape[0] == i["weight"].shape[1] else _SKIP)),
            *_bias_mistakes(op, {0: ("sample", "n"), 2: ("output row", "m"), 3: ("output column", "l")}),
            *_shifts(op),
            *_steps(op, (("stride", 1), ("padding", 0))),
        ]
    if op == "max_pool2d":
        return [
            Hypothesis("the running maximum starts at 0 instead of the window's first element: all-negative "
                       "windows give 0", _pool_from_zero),
            Hypothesis("the window's average instead of its maximum", _avg_pool),
            Hypothesis("the window's minimum instead of its maximum", _min_pool),
            *_shifts(op),
            *_steps(op, (("stride", 1), ("kernel_size", 1))),
        ]
    if op == "relu":
        return [Hypothesis("the absolute value instead of max(x, 0)", lambda i, o: i["input"].abs()),
                Hypothesis("the negative part kept instead of the positive: min(x, 0)",
                           lambda i, o: i["input"].clamp(max=0)),
                Hypothesis("nothing done: the output is the input", lambda i, o: i["input"].clone())]
    if op == "flatten":
        return [Hypothesis(f"the reshape takes the entries in {name}", _flatten_permuted(order))
                for order, name in _ORDER_NAMES.items()]
    if op == "linear":
        return [Hypothesis("the weight is not transposed: input @ weight instead of input @ weight.T",
                           _linear_untransposed),
                *_bias_mistakes(op, {0: ("sample", "n")})]
    if op == "log_softmax":
        return [Hypothesis("softmax instead of log_softmax",
                           lambda i, o: native_call(op, i, o).exp()),
                *_log_softmax_dims(inputs, options),
                Hypothesis("the maximum is not subtracted before exp: large inputs overflow", _naive_log_softmax)]
    if op == "nll_loss":
        return [*(Hypothesis(f"reduction '{r}' instead of the one asked", _nll_reduction(r)) for r in ("mean", "sum")),
                Hypothesis("the sign is flipped", lambda i, o: -native_call(op, i, o))]
    if op == "batch_norm":
        return [Hypothesis("the unbiased variance (N - 1) normalises the batch; PyTorch uses the biased one (N)",
                           _batch_norm_unbiased),
                Hypothesis("eps is left out", _with(op, eps=lambda i, o: 0.0 if o["eps"] else _SKIP))]
    return []


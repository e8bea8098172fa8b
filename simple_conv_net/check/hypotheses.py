"""Likely mistakes, each a variant of native PyTorch that a wrong output can be tested against.

A hypothesis computes, from the call's inputs (float64) and options, what the op returns if it
has that mistake: the kernel flipped, the bias added twice, the windows shifted by one... The
checker runs every hypothesis of the op and reports those whose output matches the candidate's
by compare's rule, with both errors as evidence. Nothing is guessed from the source text.

A mistake is made of up to three parts, so that two can be combined (real bugs come in pairs):
``before`` changes the inputs or options native gets (the kernel flipped, a stride of 1),
``core`` computes something else than the op (an average instead of a maximum), ``after``
changes the output (a running maximum clamped at 0, the output cropped, channels left at 0).
:func:`pairs` combines two mistakes of different groups, at most one of them a core, in the order
of the list (the cheapest and likeliest first); a ``pair_only`` mistake (only channel 0 pooled)
is tried in pairs only, since alone the locus of the wrong entries already says it.

A hypothesis returns None where it does not apply (a transposed kernel needs a square one).
``interior`` drops the outermost rows and columns of both before they are compared: a window
shifted by one row reads past the input's edge, where each implementation does something else, so
only the interior counts.

max_pool2d's indices (return_indices=True) have mistakes of their own, :func:`index_mistakes`:
positions counted in another frame than the input plane's (the window, the whole sample, the
padded plane), each tested for equality with what the candidate returned.
"""

from __future__ import annotations

import itertools
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from .forms import native_call
from .text import pair

MAX_PAIRS = 150   # pairs tried on one call, at most


class Hypothesis(NamedTuple):
    text: str                            # no ':' in it: what comes before the first one names the mistake
    op: str
    before: Callable | None = None       # (inputs, options) -> (inputs, options), or None: it does not apply
    core: Callable | None = None         # (inputs, options) -> tensor or None, instead of native
    after: Callable | None = None        # (output, inputs, options) -> output (the call's own inputs and options)
    interior: bool = False               # compare without the outermost row and column
    group: str = ""                      # mistakes of one group are alternatives: never paired
    pair_only: bool = False

    def predict(self, inputs: dict, options: dict):
        return _combined((self,), inputs, options)


def _combined(mistakes: tuple, inputs: dict, options: dict):
    """Native with every mistake's before, one core (or native's), then every mistake's after."""
    changed, changed_options = dict(inputs), dict(options)
    for mistake in mistakes:
        if mistake.before:
            found = mistake.before(changed, changed_options)
            if found is None:
                return None
            changed, changed_options = found
    core = next((m.core for m in mistakes if m.core), None)
    output = core(changed, changed_options) if core else native_call(mistakes[0].op, changed, changed_options)
    for mistake in mistakes:
        if output is None:
            return None
        if mistake.after:
            output = mistake.after(output, inputs, options)
    return output


def pairs(singles: list[Hypothesis]) -> list[Hypothesis]:
    """Two mistakes at once (see the module doc), at most MAX_PAIRS of them."""
    found = []
    for a, b in itertools.combinations(singles, 2):
        if a.group == b.group or (a.core and b.core):
            continue
        found.append(Hypothesis(f"{a.text}; and also {b.text}", a.op, interior=a.interior or b.interior,
                                core=lambda i, o, a=a, b=b: _combined((a, b), i, o), group="pair"))
        if len(found) == MAX_PAIRS:
            break
    return found


def _changed(**changes) -> Callable:
    """A ``before`` replacing some inputs or options: {name: value or f(inputs, options)} (None from f: does not
    apply)."""
    def before(inputs, options):
        new_inputs, new_options = dict(inputs), dict(options)
        for key, change in changes.items():
            value = change(inputs, options) if callable(change) else change
            if value is _SKIP:
                return None
            (new_inputs if key in inputs else new_options)[key] = value
        return new_inputs, new_options
    return before


_SKIP = object()


def _square_kernel(transform):
    return lambda i, o: transform(i["weight"]) if i["weight"].shape[2] == i["weight"].shape[3] else _SKIP


def _bias_along(axis: int, op: str) -> Hypothesis:
    """The op without bias, plus bias[k] at index k along ``axis`` (a loop that indexes the bias with the wrong
    loop variable); it does not apply where that axis is longer than the bias."""
    def after(output, inputs, options):
        bias = inputs["bias"]
        size = output.shape[axis] if output.dim() > axis else 0
        if not 0 < size <= bias.shape[0]:
            return None
        shape = [1] * output.dim()
        shape[axis] = size
        return output + bias[:size].reshape(shape)
    return after


def _shifts(op: str) -> list[Hypothesis]:
    def text(dy, dx):
        moves = [f"{d:+d} {axis}" for d, axis in ((dy, "row"), (dx, "column")) if d]
        return f"the windows are read {' and '.join(moves)} away from where they should be (an index off by one)"
    return [Hypothesis(text(dy, dx), op, _changed(input=lambda i, o, dy=dy, dx=dx: i["input"].roll((-dy, -dx), (2, 3))),
                       interior=True, group="shift")
            for dy, dx in ((1, 0), (0, 1), (1, 1), (-1, 0), (0, -1), (-1, -1))]


def _nudged(option: str, delta: int, minimum: int):
    def before(inputs, options):
        default = options.get("kernel_size") if option == "stride" and options.get("stride") is None else None
        given = options.get(option) if default is None else default
        if isinstance(given, str):       # padding='same' or 'valid': no number to be one off
            return None
        values = tuple(v + delta for v in pair(given))
        return None if min(values) < minimum else (inputs, dict(options, **{option: values}))
    return before


def _steps(op: str, options: tuple) -> list[Hypothesis]:
    return [Hypothesis(f"{option} {'one more' if delta > 0 else 'one less'} than asked", op,
                       _nudged(option, delta, low), group=option)
            for option, low in options for delta in (1, -1)]


def _stride(options: dict) -> tuple:
    return pair(options.get("stride") or options.get("kernel_size") or 1)


def _stride_one(rows: bool, columns: bool):
    """Windows taken at stride 1 along the axes named (a loop indexing the input with m instead of stride*m)."""
    def before(inputs, options):
        stride = _stride(options)
        if (rows and stride[0] == 1) or (columns and stride[1] == 1):
            return None
        return inputs, dict(options, stride=(1 if rows else stride[0], 1 if columns else stride[1]))
    return before


def _cropped(op: str):
    """The output cut to the size the op's own output has (what the loop writes into)."""
    def after(output, inputs, options):
        meta = {k: None if v is None else v.to("meta") for k, v in inputs.items()}
        shape = native_call(op, meta, options).shape
        if output.dim() != 4 or output.shape[2] < shape[2] or output.shape[3] < shape[3]:
            return None
        return output[..., :shape[2], :shape[3]]
    return after


def _stride_one_windows(op: str) -> list[Hypothesis]:
    """The windows taken at stride 1 and written into the smaller output the stride gives: only its first row or
    column is right."""
    found = []
    for rows, columns, where in ((True, True, "in both directions"), (True, False, "down the rows"),
                                 (False, True, "along the columns")):
        found.append(Hypothesis(f"the windows are taken at stride 1 {where} instead of the stride asked, and written "
                                f"into the smaller output that stride gives (the input indexed by m instead of "
                                f"stride*m)", op, _stride_one(rows, columns), after=_cropped(op), group="stride-1"))
    return found


def _channel_zero(what: str, op: str) -> list[Hypothesis]:
    """Only channel (filter) 0 computed, the others left at 0; and (pooling) every channel computed from channel 0."""
    def only_first(output, inputs, options):
        if output.dim() < 2 or output.shape[1] < 2:
            return None
        kept = torch.zeros_like(output)
        kept[:, 0] = output[:, 0]
        return kept
    found = [Hypothesis(f"only {what} 0 is computed (the others are left at 0)", op, after=only_first,
                        group="channel", pair_only=True)]
    if op == "max_pool2d":
        found.append(Hypothesis("every channel is pooled from channel 0 (the channel index is 0 instead of c)", op,
                                _changed(input=lambda i, o: i["input"][:, :1].expand_as(i["input"])
                                         if i["input"].shape[1] > 1 else _SKIP), group="channel"))
    return found


def _bias_mistakes(op: str, axes: dict) -> list[Hypothesis]:
    has_bias = (lambda i, o: None if i.get("bias") is not None else _SKIP)
    return [
        Hypothesis("the bias is missing", op, _changed(bias=has_bias), group="bias"),
        Hypothesis("the bias is added twice", op, _changed(bias=lambda i, o: 2 * i["bias"] if i.get("bias") is not None
                                                          else _SKIP), group="bias"),
        *(Hypothesis(f"the bias is indexed by the {name} (bias[{index}]) instead of the output channel", op,
                     _changed(bias=has_bias), after=_bias_along(axis, op), group="bias")
          for axis, (name, index) in axes.items()),
    ]


def _ignored(op: str, option: str, default, what: str) -> Hypothesis:
    """The function takes ``option`` and computes as if it had its default (a loop or view that never reads it)."""
    def before(inputs, options):
        given = options.get(option, default)
        if given is None or given == default or (option == "dilation" and pair(given) == (1, 1)):
            return None
        return inputs, dict(options, **{option: default})
    return Hypothesis(f"{option} is ignored ({what})", op, before, group=option)


def _groups_ignored(inputs, options):
    """Every filter reads the first group's input channels: the channel index ci instead of g*C_in/groups + ci."""
    groups = options.get("groups", 1)
    if groups == 1:
        return None
    per_group = inputs["weight"].shape[1]
    return dict(inputs, input=inputs["input"][:, :per_group]), dict(options, groups=1)


def _nll_mean_over_count(inputs, options):
    """A weighted mean divided by the number of targets counted instead of the sum of their weights."""
    if inputs.get("weight") is None or options.get("reduction", "mean") != "mean":
        return None
    total = native_call("nll_loss", inputs, dict(options, reduction="sum"))
    counted = (inputs["target"] != options.get("ignore_index", -100)).sum()
    return total / counted


def index_mistakes(indices: torch.Tensor, input_shape, options: dict) -> list[tuple[str, torch.Tensor]]:
    """(the mistake, the indices it gives) for max_pool2d's return_indices, from PyTorch's ``indices`` (int64
    positions h*W + w of each input plane): positions in another frame than the input plane's."""
    channels, height, width = input_shape[-3:]
    kernel, stride = pair(options["kernel_size"]), pair(options.get("stride") or options["kernel_size"])
    padding, dilation = pair(options.get("padding", 0)), pair(options.get("dilation", 1))
    rows, columns = indices // width, indices % width
    top = (torch.arange(indices.shape[-2]) * stride[0] - padding[0]).reshape(-1, 1)
    left = torch.arange(indices.shape[-1]) * stride[1] - padding[1]
    found = [("positions within each window, i*K_w + j, not in the input plane",
              (rows - top) // dilation[0] * kernel[1] + (columns - left) // dilation[1]),
             ("positions in the whole sample, c*H*W + h*W + w, not in each channel's plane",
              indices + torch.arange(channels).reshape(-1, 1, 1) * height * width),
             ("column-major positions w*H + h, not h*W + w", columns * height + rows)]
    if padding != (0, 0):
        found.append(("positions in the padded plane, (h + p)*(W + 2p) + (w + p), not in the input's",
                      (rows + padding[0]) * (width + 2 * padding[1]) + columns + padding[1]))
    return [(text, predicted) for text, predicted in found if not torch.equal(predicted, indices)]


def _pool_from_zero(output, inputs, options):
    """A running maximum that starts at 0: max(0, the window's maximum)."""
    return output.clamp(min=0)


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
    def core(inputs, options):
        if not _flatten_orders(inputs, options):
            return None
        x = inputs["input"]
        return x.permute(0, *order).reshape(x.shape[0], -1)
    return core


def _linear_untransposed(inputs, options):
    weight = inputs["weight"]
    if weight.shape[0] != weight.shape[1]:
        return None
    out = inputs["input"] @ weight
    return out if inputs.get("bias") is None else out + inputs["bias"]


def _log_softmax_dims(op: str, inputs, options):
    dim = options["dim"] % inputs["input"].dim()
    return [Hypothesis(f"log_softmax along dim {d} instead of {dim}", op, _changed(dim=d), group="dim")
            for d in range(inputs["input"].dim()) if d != dim]


def _naive_log_softmax(inputs, options):
    """exp, sum, log in float32 without subtracting the maximum first: overflows for large inputs."""
    x = inputs["input"].float()
    return (x.exp() / x.exp().sum(options["dim"], keepdim=True)).log().double()


def _nll_reduction(reduction):
    def before(inputs, options):
        return None if options.get("reduction", "mean") == reduction else (inputs, dict(options, reduction=reduction))
    return before


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
    """The mistakes that apply to ``op`` (some depend on the call, e.g. which dims exist), likeliest first."""
    if op == "conv2d":
        return [
            Hypothesis("the kernel is flipped, a true convolution instead of PyTorch's cross-correlation", op,
                       _changed(weight=lambda i, o: i["weight"].flip(2, 3)), group="kernel"),
            Hypothesis("each filter is transposed (the kernel's rows and columns swapped)", op,
                       _changed(weight=_square_kernel(lambda w: w.transpose(2, 3))), group="kernel"),
            Hypothesis("filters and input channels are swapped in the weight", op,
                       _changed(weight=lambda i, o: i["weight"].transpose(0, 1)
                                if i["weight"].shape[0] == i["weight"].shape[1] else _SKIP), group="kernel"),
            *_bias_mistakes(op, {0: ("sample", "n"), 2: ("output row", "m"), 3: ("output column", "l")}),
            *_shifts(op),
            *_stride_one_windows(op),
            *_channel_zero("filter", op),
            *_steps(op, (("stride", 1), ("padding", 0))),
            _ignored(op, "dilation", 1, "the kernel's taps read adjacent entries, as with dilation=1"),
            Hypothesis("groups is ignored, every filter reads the first group's input channels (the channel index "
                       "ci instead of g*C_in/groups + ci)", op, _groups_ignored, group="groups"),
        ]
    if op == "max_pool2d":
        return [
            Hypothesis("the running maximum starts at 0 instead of the window's first element, so all-negative "
                       "windows give 0", op, after=_pool_from_zero, group="start"),
            Hypothesis("the window's average instead of its maximum", op, core=_avg_pool, group="reduce"),
            Hypothesis("the window's minimum instead of its maximum", op, core=_min_pool, group="reduce"),
            *_shifts(op),
            *_stride_one_windows(op),
            *_channel_zero("channel", op),
            *_steps(op, (("stride", 1), ("kernel_size", 1))),
            _ignored(op, "dilation", 1, "the window reads adjacent entries, as with dilation=1"),
            _ignored(op, "ceil_mode", False, "the output size is rounded down, the last partial windows dropped"),
        ]
    if op == "relu":
        return [Hypothesis("the absolute value instead of max(x, 0)", op, core=lambda i, o: i["input"].abs()),
                Hypothesis("the negative part kept instead of the positive, min(x, 0)", op,
                           core=lambda i, o: i["input"].clamp(max=0)),
                Hypothesis("nothing done, the output is the input", op, core=lambda i, o: i["input"].clone())]
    if op == "flatten":
        return [Hypothesis(f"the reshape takes the entries in {name}", op, core=_flatten_permuted(order))
                for order, name in _ORDER_NAMES.items()]
    if op == "linear":
        return [Hypothesis("the weight is not transposed (input @ weight instead of input @ weight.T)", op,
                           core=_linear_untransposed),
                *_bias_mistakes(op, {0: ("sample", "n")})]
    if op == "log_softmax":
        return [Hypothesis("softmax instead of log_softmax", op, after=lambda out, i, o: out.exp()),
                *_log_softmax_dims(op, inputs, options),
                Hypothesis("the maximum is not subtracted before exp, so large inputs overflow", op,
                           core=_naive_log_softmax)]
    if op == "nll_loss":
        return [*(Hypothesis(f"reduction '{r}' instead of the one asked", op, _nll_reduction(r), group="reduction")
                  for r in ("mean", "sum")),
                Hypothesis("the sign is flipped", op, after=lambda out, i, o: -out),
                Hypothesis("the class weights are ignored (every class weighs 1)", op,
                           _changed(weight=lambda i, o: None if i.get("weight") is not None else _SKIP),
                           group="weight"),
                _ignored(op, "ignore_index", -100, "the targets equal to it are counted like the others"),
                Hypothesis("the weighted mean is divided by the number of targets instead of the sum of their "
                           "weights", op, core=_nll_mean_over_count, group="reduction")]
    if op == "batch_norm":
        return [Hypothesis("the unbiased variance (N - 1) normalises the batch; PyTorch uses the biased one (N)", op,
                           core=_batch_norm_unbiased),
                Hypothesis("eps is left out", op, _changed(eps=lambda i, o: 0.0 if o["eps"] else _SKIP))]
    return []

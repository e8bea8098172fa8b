"""Per-layer output shapes, parameters, multiply-adds and activation memory, counted from the shapes.

    python -m simple_conv_net.summary --model lenet --batch-size 64
    python -m simple_conv_net.summary --model lenet5 --input-shape 3 32 32

Nothing here knows a particular network. :class:`CountingOps` is an ops backend (the
:class:`~simple_conv_net.backends.Ops` fields, with torch.nn.functional's signatures)
whose ops compute their output with native torch on the ``meta`` device (shapes only,
no arithmetic, no memory) and record what they did. :func:`count` runs a model's layer
table -- or any block ``(ops, x) -> y`` -- through it::

    rows = count(build_model("lenet"), (1, 28, 28), batch_size=64)
    rows = count(lambda ops, x: ops.conv2d(x, w, None, 2, 1), (128, 64, 64))

The conventions (one multiply-add = one multiplication and one addition):

    conv2d        N * C_out * H_out * W_out * (C_in / groups) * K_h * K_w
    linear        N * in_features * out_features
    batch_norm    N * C * H * W (one scale-and-shift per element, once folded)
    max_pool2d, relu, flatten, log_softmax, nll_loss: 0 multiply-adds (comparisons,
    copies and exponentials are not multiply-adds)

Bias additions are not counted as multiply-adds; bias *parameters* are counted, and
also reported on their own (:attr:`Row.bias_params`) because some texts (seed 001,
question 1) count parameters "skipping bias terms". A parameter tensor used by several
ops is counted once. Activation memory is the bytes of a layer's output for the whole
batch at 4 bytes per element (float32).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from .backends import Ops

FLOAT32_BYTES = 4
ZERO_MAC_OPS = ("max_pool2d", "relu", "flatten", "log_softmax", "nll_loss")


@dataclass(frozen=True)
class Row:
    """One layer (or one op of a block) of a count."""

    name: str                     # the layer's output name ('conv', 'fc1', ...) or 'conv2d_1' for a block's op
    op: str                       # the op(s) it called, e.g. 'conv2d' or 'conv2d+relu'
    output_shape: tuple           # per image, e.g. (20, 24, 24)
    batch_size: int
    weight_params: int            # parameters other than biases (weights, batch-norm scales)
    bias_params: int              # bias parameters (conv / linear bias, batch-norm shift)
    macs_per_image: int           # multiply-adds for one image

    @property
    def params(self) -> int:
        """Parameters, biases included."""
        return self.weight_params + self.bias_params

    @property
    def macs(self) -> int:
        """Multiply-adds for the whole batch."""
        return self.macs_per_image * self.batch_size

    @property
    def activation_bytes(self) -> int:
        """Bytes of this layer's output for the whole batch, float32."""
        return math.prod(self.output_shape) * self.batch_size * FLOAT32_BYTES

    def as_dict(self) -> dict:
        d = asdict(self)
        d["output_shape"] = list(self.output_shape)
        d.update(params=self.params, macs=self.macs, activation_bytes=self.activation_bytes)
        return d


@dataclass(frozen=True)
class Totals:
    params: int
    weight_params: int
    bias_params: int
    macs_per_image: int
    macs: int
    activation_bytes: int   # all layers' outputs together, for the batch (what backward keeps, roughly)


def totals(rows: Sequence[Row]) -> Totals:
    return Totals(
        params=sum(r.params for r in rows),
        weight_params=sum(r.weight_params for r in rows),
        bias_params=sum(r.bias_params for r in rows),
        macs_per_image=sum(r.macs_per_image for r in rows),
        macs=sum(r.macs for r in rows),
        activation_bytes=sum(r.activation_bytes for r in rows),
    )


# ----------------------------------------------------------------------------- the counting backend


@dataclass
class Call:
    op: str
    output_shape: tuple     # with the batch dimension
    macs: int               # for the whole batch
    weight_params: int
    bias_params: int


def _meta(tensor):
    if isinstance(tensor, torch.Tensor) and tensor.device.type != "meta":
        return tensor.detach().to("meta")
    return tensor


class CountingOps:
    """An ops backend that computes shapes on the meta device and records every call.

    ``ops`` is an :class:`Ops` (pass it wherever a model's ops go); ``calls`` the
    :class:`Call` records in order. Parameter tensors (weights, biases) may live on any
    device; each distinct tensor object is counted once.
    """

    def __init__(self):
        self.calls: list[Call] = []
        self._seen: set[int] = set()
        self._keep: list = []   # keep counted tensors alive so their id()s stay unique
        handlers = {name: getattr(self, f"_{name}", None) or self._generic(name) for name in Ops._fields}
        self.ops = Ops(**handlers)

    def _params(self, tensor) -> int:
        if tensor is None or id(tensor) in self._seen:
            return 0
        self._seen.add(id(tensor))
        self._keep.append(tensor)
        return tensor.numel()

    def _record(self, op, out, macs=0, weight=None, bias=None):
        self.calls.append(Call(op, tuple(out.shape), int(macs), self._params(weight), self._params(bias)))
        return out

    def _conv2d(self, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        out = F.conv2d(_meta(input), _meta(weight), _meta(bias), stride, padding, dilation, groups)
        n, c_out, h_out, w_out = out.shape
        _, c_in_per_group, k_h, k_w = weight.shape
        return self._record("conv2d", out, n * c_out * h_out * w_out * c_in_per_group * k_h * k_w, weight, bias)

    def _linear(self, input, weight, bias=None):
        out = F.linear(_meta(input), _meta(weight), _meta(bias))
        out_features, in_features = weight.shape
        rows = math.prod(input.shape[:-1])
        return self._record("linear", out, rows * in_features * out_features, weight, bias)

    def _batch_norm(self, input, running_mean, running_var, weight=None, bias=None, *args, **kwargs):
        out = torch.empty_like(_meta(input))
        return self._record("batch_norm", out, out.numel(), weight, bias)

    def _flatten(self, input, start_dim=0, end_dim=-1):
        return self._record("flatten", torch.flatten(_meta(input), start_dim, end_dim))

    def _generic(self, name: str) -> Callable:
        native = getattr(F, name)

        def op(*args, **kwargs):
            out = native(*(_meta(a) for a in args), **{k: _meta(v) for k, v in kwargs.items()})
            return self._record(name, out)   # max_pool2d, relu, log_softmax, nll_loss: 0 multiply-adds

        op.__name__ = name
        return op


# ----------------------------------------------------------------------------- counting a model or a block


def _layers_of(model_or_layers) -> list[tuple[str, Callable]]:
    """[(name, fn(ops, x))] from an OpsNet (anything with .layers()), a layer table or a callable."""
    if hasattr(model_or_layers, "layers"):
        return [(entry[0], entry[-1]) for entry in model_or_layers.layers()]
    if callable(model_or_layers):
        return []   # a block: one row per op call
    entries = list(model_or_layers)
    if not all(isinstance(e, (tuple, list)) and len(e) >= 2 and callable(e[-1]) for e in entries):
        raise TypeError("count(): argument 'model_or_layers' expected an OpsNet, a callable (ops, x) -> y, "
                        "or a sequence of (name, [module name,] fn(ops, x)) tuples")
    return [(str(e[0]), e[-1]) for e in entries]


def _row(name: str, calls: Sequence[Call], batch_size: int, fallback_shape) -> Row:
    shape = calls[-1].output_shape if calls else tuple(fallback_shape)
    return Row(
        name=name,
        op="+".join(c.op for c in calls) or "identity",
        output_shape=tuple(shape[1:]),
        batch_size=batch_size,
        weight_params=sum(c.weight_params for c in calls),
        bias_params=sum(c.bias_params for c in calls),
        macs_per_image=sum(c.macs for c in calls) // batch_size,
    )


def count(model_or_layers, input_shape: Iterable[int] | None = None, batch_size: int = 1) -> list[Row]:
    """Count a network from the shapes, without computing it.

    ``model_or_layers``: an :class:`~simple_conv_net.model.OpsNet` (one row per entry
    of its ``layers()`` table), a layer table itself (``(name, [module name,] fn)``
    tuples), or a block ``fn(ops, x) -> y`` (one row per op call, named ``conv2d_1``,
    ``relu_1``, ...). ``input_shape`` is one image's shape, e.g. ``(C, H, W)``
    (default: the model's ``input_shape``); ``batch_size`` scales the per-batch columns.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"count(): argument 'batch_size' expected an int >= 1, got {batch_size!r}")
    if input_shape is None:
        input_shape = getattr(model_or_layers, "input_shape", None)
        if input_shape is None:
            raise ValueError("count(): argument 'input_shape' is required for a block or a layer table")
    input_shape = tuple(int(s) for s in input_shape)
    if not input_shape or any(s < 1 for s in input_shape):
        raise ValueError(f"count(): argument 'input_shape' expected positive sizes, got {input_shape}")

    counter = CountingOps()
    x = torch.empty((batch_size, *input_shape), device="meta")
    layers = _layers_of(model_or_layers)
    if not layers:   # a block: one row per op
        model_or_layers(counter.ops, x)
        seen: dict[str, int] = {}
        rows = []
        for call in counter.calls:
            seen[call.op] = seen.get(call.op, 0) + 1
            rows.append(_row(f"{call.op}_{seen[call.op]}", [call], batch_size, call.output_shape))
        return rows
    rows = []
    for name, fn in layers:
        start = len(counter.calls)
        shape = x.shape
        x = fn(counter.ops, x)
        rows.append(_row(name, counter.calls[start:], batch_size, shape))
    return rows


# ----------------------------------------------------------------------------- the table


def human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


HEADERS = ("layer", "op", "output (per image)", "params", "of which bias", "MACs/image", "MACs/batch",
           "activations (batch)")


def table_rows(rows: Sequence[Row]) -> list[tuple[str, ...]]:
    """The table as strings: one line per row, then the totals."""
    lines = [(r.name, r.op, "x".join(map(str, r.output_shape)), f"{r.params:,}", f"{r.bias_params:,}",
              f"{r.macs_per_image:,}", f"{r.macs:,}", f"{r.activation_bytes:,} B") for r in rows]
    t = totals(rows)
    lines.append(("total", "", "", f"{t.params:,}", f"{t.bias_params:,}", f"{t.macs_per_image:,}", f"{t.macs:,}",
                  f"{t.activation_bytes:,} B"))
    return lines


def format_table(rows: Sequence[Row]) -> str:
    lines = [HEADERS, *table_rows(rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    align = ["<", "<", "<", ">", ">", ">", ">", ">"]
    out = []
    for k, line in enumerate(lines):
        if k == len(lines) - 1:
            out.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        out.append("  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(line, align, widths)).rstrip())
        if k == 0:
            out.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
    return "\n".join(out)


def describe(rows: Sequence[Row], title: str, input_shape, batch_size: int) -> str:
    t = totals(rows)
    input_bytes = math.prod(input_shape) * batch_size * FLOAT32_BYTES
    return "\n".join([
        f"{title}, input {'x'.join(map(str, input_shape))}, batch {batch_size}",
        "",
        format_table(rows),
        "",
        f"parameters: {t.params:,} ({t.weight_params:,} without bias, {t.bias_params:,} bias); "
        f"{human_bytes(t.params * FLOAT32_BYTES)} as float32",
        f"multiply-adds: {t.macs_per_image:,} per image, {t.macs:,} per batch of {batch_size}",
        f"activations: {human_bytes(t.activation_bytes)} for the batch, all layers' outputs together "
        f"(input: {human_bytes(input_bytes)})",
        "MACs: conv = N*C_out*H_out*W_out*C_in*K_h*K_w, linear = N*in*out, batch_norm = N*C*H*W (its scale); "
        "max_pool2d, relu, flatten and log_softmax count 0 multiply-adds; bias additions are not counted.",
    ])


def main(argv=None) -> int:
    from .cli import positive_int
    from .model import MODELS, build_model

    parser = argparse.ArgumentParser(prog="python -m simple_conv_net.summary",
                                     description="Per-layer output shape, parameters, multiply-adds and activation "
                                                 "memory of a network, counted from the shapes")
    parser.add_argument("--model", choices=list(MODELS), default="simple",
                        help="network (default: simple)")
    parser.add_argument("--input-shape", type=int, nargs=3, metavar=("C", "H", "W"), default=None,
                        help="one image's shape (default: the model's own, e.g. 1 28 28; 3 32 32 for lenet5)")
    parser.add_argument("--num-classes", type=positive_int, default=10, metavar="K", help="classes (default: 10)")
    parser.add_argument("--batch-norm", action="store_true", help="LeNet-5 with batch normalisation")
    parser.add_argument("--batch-size", type=positive_int, default=1, metavar="N", help="batch size (default: 1)")
    args = parser.parse_args(argv)
    if args.input_shape is not None and min(args.input_shape) < 1:
        parser.error(f"argument --input-shape: expected positive sizes, got {args.input_shape}")
    input_shape = tuple(args.input_shape) if args.input_shape else MODELS[args.model]().input_shape
    try:
        model = build_model(args.model, "torch", input_shape, args.num_classes, batch_norm=args.batch_norm)
    except ValueError as error:  # a combination build_model refuses, e.g. --model simple with 3 channels
        parser.error(str(error))
    try:
        rows = count(model, input_shape, args.batch_size)
    except (ValueError, RuntimeError) as error:  # e.g. an input too small for the kernels
        parser.error(f"argument --input-shape: {error}")
    print(describe(rows, f"{type(model).__name__} ({args.model})", input_shape, args.batch_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())

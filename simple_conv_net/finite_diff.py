"""Finite-difference check of the hand-written backward passes, for the whole net or one layer.

    python -m simple_conv_net.parity --finite-diff --impl vector [--model simple|lenet|lenet5]
                                     [--layer NAME] [--fd-entries 32] [--batch-size 2] [--seed 0]
                                     [--data random|mnist] [--data-dir DIR] [--input-shape C H W]

The gradient a backward pass returns is compared with the central difference (seed 004 eq. 5;
seed 003 section 8, with the symmetric step)

    df/dw_i  ~  (f(w + h e_i) - f(w - h e_i)) / 2h,       h = eps = 1e-6,

entry by entry, in float64 (the model and the batch are promoted to float64 whatever their dtype:
in float32 a step of 1e-6 is lost in rounding).

What f is:

* whole net (``layer=None``): f = the model's loss (mean nll of its log-softmax output) on the
  batch; one row per parameter of the net and one for the input.
* one layer (``layer='conv'``, any name of ``model.intermediates()``): the layer is fed the input
  the net gives it on the batch, and f = sum(layer output * R) with R a fixed seeded normal
  tensor, so the backward sees a dense, generic upstream gradient R; one row for the layer's
  input (``'<layer>.input'``) and one per parameter of the layer.

The analytic gradient is autograd through the impl's Functions, i.e. the impl's hand-written
backward kernels (with ``impl='torch'``, native autograd: a check of the checker).

Sampling (``max_entries``): each central difference costs two forward passes, so a tensor of n
entries costs 2n passes (fc_layer1.weight of SimpleConvNet has 1.44M entries). With
``max_entries=k`` only k entries per tensor are differenced, drawn without replacement by
``torch.randperm`` from a generator seeded with ``seed`` and the tensor's name (so a run is
reproducible and different tensors get different draws); ``None`` (or k >= n) checks every entry.

Each row (a :class:`FiniteDiffRow`: the fields of ``parity.Row`` and the number of entries checked) gives,
over the checked entries, with the central differences as the reference,

    max_rel = max_i |analytic_i - central_i| / scale,
    scale   = max(max_i |central_i| over the checked entries, max |analytic| over the whole tensor),

the scale being taken over the whole analytic gradient so that a sample of near-zero entries
(a dead ReLU unit's weights) does not blow up the ratio; a wrong backward shows in either term.

Tolerance, TOLERANCE = 1e-6: the truncation error of the central difference is h^2/6 f''' ~ 1e-13;
the rounding error is about (ulp-level error of f) / h ~ 1e-16 * |f| * (summation depth) / 1e-6
~ 1e-9 for a loss of order 1, i.e. ~1e-8 relative to gradients of order 0.1-0.01 (measured:
1e-11 to 1e-8). 1e-6 leaves two orders of magnitude above that and is five orders below what
a sign, index or transpose error produces (max_rel of order 1).

Kinks: ReLU and max pooling are not differentiable where an input is 0 or a pooling window has
a tie; a step across such a point gives the average of the two one-sided slopes, while the
backward (rightly) takes one of them. Random normal data has no such points with probability ~1,
but MNIST images do: blank regions give equal conv outputs, so a pixel step breaks a tie. Each
entry is therefore also tested for a kink: the one-sided slopes (f(w+h) - f(w))/h and
(f(w) - f(w-h))/h (f(w) is computed once per tensor, so this costs nothing) differ by about
h |f''| ~ 1e-6 relative where f is smooth and by O(1) at a kink; an entry whose slopes differ by
more than KINK = 1e-3 times the row's scale is left out of the comparison and counted in the
row's ``kinks``. Kinks are a property of the forward pass alone, so this cannot hide a wrong
backward; a row with every sampled entry at a kink checks nothing (checked = 0).
"""

from __future__ import annotations

import copy
import zlib
from dataclasses import dataclass

import torch

from .compare import compare
from .model import OpsNet, build_model

TOLERANCE = 1e-6
EPS = 1e-6
KINK = 1e-3            # one-sided slopes differing by more than KINK * scale: a kink, left out
DEFAULT_ENTRIES = 32   # the CLI's default max_entries


@dataclass
class FiniteDiffRow:
    """A row of the check: the fields of parity.Row (so parity.format_table and asdict take it),
    plus ``checked``. Its own class, not a subclass, so that parity may import this module at
    its top without a circular-import failure."""

    kind: str          # 'fd'
    name: str          # 'input', a parameter name, or '<layer>.input'
    shape: tuple       # of the whole tensor
    diff_mse: float    # over the checked entries
    max_abs: float
    max_rel: float
    tolerance: float
    checked: int = 0   # entries compared (of prod(shape))
    kinks: int = 0     # entries differenced but left out: f has a kink there (see the module doc)
    native_rel = None  # parity.Row's fields that a finite difference has no use for
    problem = None

    @property
    def passed(self) -> bool:
        return self.max_rel <= self.tolerance  # NaN fails


def sample_indices(name: str, numel: int, max_entries: int | None, seed: int) -> torch.Tensor:
    """Sorted flat indices of the entries to difference: all of them, or ``max_entries`` drawn
    without replacement with a generator seeded by ``seed`` and ``name``."""
    if max_entries is None or max_entries >= numel:
        return torch.arange(numel)
    if max_entries < 1:
        raise ValueError(f"argument 'max_entries' expected a positive integer or None, got {max_entries}")
    generator = torch.Generator().manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    return torch.randperm(numel, generator=generator)[:max_entries].sort().values


@torch.no_grad()
def central_differences(f, tensor: torch.Tensor, indices: torch.Tensor, eps: float):
    """For each flat index i: the central difference (f(w_i + eps) - f(w_i - eps)) / (actual step),
    and the jump between the one-sided slopes, |(f(w_i + eps) - f(w)) / step+ - (f(w) - f(w_i - eps)) / step-|.

    ``tensor`` is perturbed in place and restored. The divisors are the steps actually taken in
    floating point ((w + eps) - (w - eps), not 2 eps). Returns (central, jump), float64 [len(indices)].
    """
    flat = tensor.view(-1)
    central = torch.empty(len(indices), dtype=torch.float64)
    jump = torch.empty(len(indices), dtype=torch.float64)
    f_0 = float(f())
    for k, i in enumerate(indices.tolist()):
        original = flat[i].item()
        flat[i] = original + eps
        plus = flat[i].item()     # the value actually stored
        f_plus = float(f())
        flat[i] = original - eps
        minus = flat[i].item()
        f_minus = float(f())
        flat[i] = original
        central[k] = (f_plus - f_minus) / (plus - minus)
        jump[k] = abs((f_plus - f_0) / (plus - original) - (f_0 - f_minus) / (original - minus))
    return central, jump


def _row(name: str, analytic: torch.Tensor, indices: torch.Tensor, central: torch.Tensor, jump: torch.Tensor,
         tolerance: float) -> FiniteDiffRow:
    analytic = analytic.detach().double()
    scale = max(central.abs().max().item() if len(central) else 0.0,
                analytic.abs().max().item() if analytic.numel() else 0.0)
    smooth = jump <= KINK * scale
    indices, central = indices[smooth], central[smooth]
    picked = analytic.reshape(-1)[indices]
    result = compare(central, picked)
    max_rel = result.max_abs / scale if scale > 0 else result.max_abs
    return FiniteDiffRow("fd", name, tuple(analytic.shape), result.diff_mse, result.max_abs, max_rel, tolerance,
                         checked=len(indices), kinks=int((~smooth).sum()))


def _layer_entry(model: OpsNet, layer: str):
    for position, (name, module_name, function) in enumerate(model.layers()):
        if name == layer:
            return position, module_name, function
    raise ValueError(f"argument 'layer' expected one of {model.intermediates()} or None, got {layer!r}")


def finite_diff_rows(model: OpsNet, x: torch.Tensor, target: torch.Tensor, layer: str | None = None,
                     eps: float = EPS, max_entries: int | None = None, seed: int = 0,
                     tolerance: float = TOLERANCE, names=None) -> list[FiniteDiffRow]:
    """Compare the model's backward (autograd through its impl's Functions) with central differences.

    ``layer=None``: f = model.loss(model(x), target); rows for 'input' then every parameter
    (its ``named_parameters`` name). ``layer='<name>'``: f = sum(layer(input) * R), R seeded
    normal; rows for '<name>.input' then the layer's parameters. ``max_entries`` entries per
    tensor (seeded sample, see the module doc), all if None. ``names``: only the rows of these
    names (default all). Runs on a float64 copy of the model; ``model`` itself is not touched.
    """
    model = copy.deepcopy(model).double()
    model.zero_grad(set_to_none=True)
    x = x.detach().double().clone()
    params = dict(model.named_parameters())
    ops = model.ops

    if layer is None:
        x.requires_grad_(True)
        loss = model.loss(model(x), target)
        labels = ["input", *params]
        tensors = [x, *params.values()]
        grads = torch.autograd.grad(loss, tensors)
        x.requires_grad_(False)

        def f():
            return model.loss(model(x), target).item()
    else:
        position, module_name, function = _layer_entry(model, layer)
        with torch.no_grad():
            _, intermediates = model(x, return_intermediates=True)
        previous = model.intermediates()[position - 1] if position else None
        layer_input = (intermediates[previous] if previous else x).detach().clone()
        prefix = f"{module_name}." if module_name else ""
        layer_params = {f"{prefix}{n}": p for n, p in getattr(model, module_name).named_parameters()} \
            if module_name else {}
        layer_input.requires_grad_(True)
        output = function(ops, layer_input)
        generator = torch.Generator().manual_seed(seed)
        weights = torch.randn(output.shape, generator=generator, dtype=torch.float64)
        labels = [f"{layer}.input", *layer_params]
        tensors = [layer_input, *layer_params.values()]
        grads = torch.autograd.grad(output, tensors, weights)
        layer_input.requires_grad_(False)

        def f():
            return (function(ops, layer_input) * weights).sum().item()

    if names is not None and set(names) - set(labels):
        raise ValueError(f"argument 'names' expected a subset of {labels}, got {list(names)}")
    rows = []
    for name, tensor, grad in zip(labels, tensors, grads):
        if names is not None and name not in names:
            continue
        indices = sample_indices(name, tensor.numel(), max_entries, seed)
        central, jump = central_differences(f, tensor.detach(), indices, eps)
        rows.append(_row(name, grad, indices, central, jump, tolerance))
    return rows


def format_table(rows: list[FiniteDiffRow]) -> str:
    header = (f"{'tensor':<24}{'shape':<20}{'checked':>9}{'kinks':>7}{'diff_mse':>11}{'max abs':>11}{'max rel':>11}"
              f"{'tol':>9}  result")
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(f"{row.name:<24}{str(list(row.shape)):<20}{row.checked:>9}{row.kinks:>7}{row.diff_mse:>11.2e}"
                     f"{row.max_abs:>11.2e}{row.max_rel:>11.2e}{row.tolerance:>9.0e}  "
                     f"{'PASS' if row.passed else 'FAIL'}")
    return "\n".join(lines)


def finite_diff_report(impl: str, model: str = "simple", dtype: torch.dtype = torch.float64,
                       layer: str | None = None, entries: int | None = DEFAULT_ENTRIES, *,
                       batch_size: int = 2, seed: int = 0, data: str = "random", data_dir=None,
                       input_shape=(1, 28, 28), eps: float = EPS) -> tuple[list[FiniteDiffRow], str]:
    """Build model ``model`` with impl ``impl`` (weights seeded by ``seed``), take a batch as the
    parity report does (parity.make_batch), and return (rows, printable report).

    ``dtype`` is the dtype the weights and batch are drawn in; the check itself always runs in
    float64. ``entries`` is max_entries per tensor (None: all). Raises ValueError for an unknown
    layer; parity.make_batch raises data.MNISTNotFoundError when MNIST is missing.
    """
    from . import parity

    x, target = parity.make_batch(data, batch_size, dtype, seed, data_dir, tuple(input_shape))
    torch.manual_seed(seed)
    net = build_model(model, impl, x.shape[1:]).to(dtype)
    rows = finite_diff_rows(net, x, target, layer=layer, eps=eps, max_entries=entries, seed=seed)
    failed = sum(not row.passed for row in rows)
    scope = f"layer '{layer}'" if layer else "whole net (loss)"
    header = (f"finite differences of {model} with impl '{impl}', {scope}: central differences, eps {eps:g}, "
              f"float64 (drawn in {str(dtype).replace('torch.', '')}), batch {len(x)} of {data}, seed {seed}, "
              f"{'all' if entries is None else f'at most {entries}'} entries per tensor")
    text = "\n".join([header, format_table(rows), f"{len(rows) - failed} passed, {failed} failed"])
    return rows, text

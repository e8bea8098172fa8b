"""PyTorch's own sample inputs for the eight ops, through both impls: forward and every gradient, float64 and
float32, judged by the compare core (simple_conv_net.compare).

PyTorch defines what each functional signature means by the OpInfo entries behind its own test suite,
``torch.testing._internal.common_methods_invocations.op_db``: ``op.sample_inputs(device, dtype,
requires_grad=True)`` yields SampleInputs (``input``, ``args``, ``kwargs``) that exercise every argument
(conv2d's groups, dilation and 'same' padding, max_pool2d's ceil_mode and return_indices, nll_loss's weight,
ignore_index and K-dimensional inputs, batch_norm's momenta...). Each sample is called on our op as it is
called on ``op.op``, with fresh copies of its tensors, and judged:

- the forward output against native PyTorch run in float64 on the same values (the truth), with native
  float32 beside it for its own error (the compare core's rule); an ``indices`` output (return_indices)
  must be equal; every tensor argument the call updates in place (batch_norm's running statistics) is
  compared after the call too;
- the gradient with respect to every input that requires grad, for one seeded upstream gradient, the same way.

The magnitude of terms (simple_conv_net.compare, "Cancellation") is given where sums cancel: conv2d and linear
are bilinear, so native PyTorch on the absolute values gives it; batch_norm's is written out in
:func:`batch_norm_magnitudes` (with two values per channel its training input gradient is exactly 0 and its
float32 digits are rounding of terms of size 1).

A sample matches when every comparison passes; it is refused when our op raises (the message is kept); else it
mismatches. The test asserts every sample matches or is refused for a reason :data:`REFUSALS` lists (on the
CPU: none).

Speed: max_pool2d has 1,440 samples a dtype, ten input layouts (shapes, unbatched, channels-last) times 144
combinations of its arguments. Samples are grouped by their non-tensor arguments (the combination), and of each
group of ten or more :func:`drawn` keeps every tenth in turn, starting at the group's index modulo ten, so every
combination is run once and every input layout about fifteen times (the offset walks them). That is every
argument combination op_db exercises, in a tenth of the time; the other entries' groups (at most nine samples)
run whole. ``OP_DB_ALL=1`` runs every sample (107 s for both impls and dtypes here, one thread each).

This is PyTorch's internal module, so the behaviour relied on is pinned in
:func:`test_the_op_db_entries_are_what_this_test_relies_on` (names, variants, sample counts, the native
function each entry calls), and the module skips with the reason if op_db cannot be imported (it needs
``expecttest``, in the dev extras).
"""

from __future__ import annotations

import os
from collections import Counter, defaultdict

import pytest
import torch
import torch.nn.functional as F

from simple_conv_net.backends import get_ops
from simple_conv_net.compare import compare

try:
    from torch.testing._internal.common_methods_invocations import op_db
except Exception as error:  # ImportError (expecttest missing) or an internal module that moved
    pytest.skip(f"PyTorch's internal OpInfo database cannot be imported ({type(error).__name__}: {error}); "
                f"install the dev extras (expecttest)", allow_module_level=True)

# (op_db name, variant) -> our op
ENTRIES = {
    ("nn.functional.conv2d", ""): "conv2d",
    ("nn.functional.max_pool2d", ""): "max_pool2d",
    ("nn.functional.relu", ""): "relu",
    ("nn.functional.linear", ""): "linear",
    ("flatten", ""): "flatten",
    ("log_softmax", ""): "log_softmax",
    ("log_softmax", "with_dtype"): "log_softmax",
    ("nn.functional.nll_loss", ""): "nll_loss",
    ("nn.functional.batch_norm", ""): "batch_norm",
    ("nn.functional.batch_norm", "without_cudnn"): "batch_norm",
}
# The samples each entry yields on the CPU, per dtype (torch 2.13): pinned, so that a PyTorch whose samples
# changed is noticed and this file reviewed.
SAMPLE_COUNTS = {
    ("nn.functional.conv2d", ""): 30, ("nn.functional.max_pool2d", ""): 1440, ("nn.functional.relu", ""): 4,
    ("nn.functional.linear", ""): 18, ("flatten", ""): 6, ("log_softmax", ""): 7, ("log_softmax", "with_dtype"): 7,
    ("nn.functional.nll_loss", ""): 61, ("nn.functional.batch_norm", ""): 12,
    ("nn.functional.batch_norm", "without_cudnn"): 12,
}
# The native function each entry's ``op.op`` is (or calls: max_pool2d's boolean dispatch on return_indices).
NATIVE = {"conv2d": torch.conv2d, "max_pool2d": F.max_pool2d, "relu": F.relu, "linear": F.linear,
          "flatten": torch.flatten, "log_softmax": torch.log_softmax, "nll_loss": F.nll_loss,
          "batch_norm": F.batch_norm}
# Refusals the docs list (docs: "What the ops accept"), as (impl, op, a fragment of the message). None on the CPU.
REFUSALS: tuple[tuple[str, str, str], ...] = ()

IMPLS = ("vector", "scalar")
DTYPES = (torch.float64, torch.float32)
BILINEAR = ("conv2d", "linear")
EVERY = 10


def entries():
    """[(op_db entry, our op name)] in ENTRIES' order."""
    found = {(op.name, op.variant_test_name): op for op in op_db}
    return [(found[key], name) for key, name in ENTRIES.items() if key in found]


_SAMPLES = {}


def samples(entry) -> list:
    """The entry's float64 CPU samples, made once (max_pool2d's 1,440 take seconds): every call copies what it
    runs on (:class:`Call`, which casts them to the dtype judged), so the impls, the dtypes and the tests share
    them. (op_db makes its float32 samples as its float64 ones, the same shapes, layouts and arguments; a cast
    of the float64 ones is as good, in half the time.)"""
    key = (entry.name, entry.variant_test_name)
    if key not in _SAMPLES:
        _SAMPLES[key] = list(entry.sample_inputs("cpu", torch.float64, requires_grad=True))
    return _SAMPLES[key]


def _combination(sample) -> str:
    """The sample's non-tensor arguments (tensors by their role only): what groups samples in :func:`drawn`."""
    def plain(value):
        if isinstance(value, torch.Tensor):
            return "tensor"
        if isinstance(value, (list, tuple)):
            return tuple(plain(v) for v in value)
        return value
    return repr((plain(sample.args), sorted((k, plain(v)) for k, v in sample.kwargs.items())))


def drawn(samples: list, every: int = EVERY) -> list:
    """The samples the default suite runs (module doc): a group of at least ``every`` samples sharing their
    non-tensor arguments keeps every ``every``-th, from the group's index modulo ``every`` (so at least one);
    a smaller group is kept whole."""
    if os.environ.get("OP_DB_ALL"):
        return samples
    groups = defaultdict(list)
    for sample in samples:
        groups[_combination(sample)].append(sample)
    kept = []
    for index, group in enumerate(groups.values()):
        kept += group if len(group) < every else [s for j, s in enumerate(group) if (j + index) % every == 0]
    return kept


def _copy(value, dtype=None):
    """A fresh copy of a sample's argument: tensors cloned (floating ones cast to ``dtype`` if given, leaves
    requiring grad as the sample's do), containers copied, the rest as is."""
    if isinstance(value, torch.Tensor):
        copy = value.detach().clone()
        if dtype is not None and copy.is_floating_point():
            copy = copy.to(dtype)
        return copy.requires_grad_(value.requires_grad)
    if isinstance(value, (list, tuple)):
        return type(value)(_copy(v, dtype) for v in value)
    return value


class Sample:
    """A sample's arguments as another call takes them (``input``, ``args``, ``kwargs``)."""

    def __init__(self, input, args, kwargs):
        self.input, self.args, self.kwargs = input, tuple(args), dict(kwargs)

    @classmethod
    def cast(cls, sample, dtype=None, transform=lambda t: t):
        """Copies of ``sample``'s arguments cast to ``dtype``, each floating tensor passed through ``transform``."""
        def copy(value):
            value_copy = _copy(value, dtype)
            if isinstance(value_copy, torch.Tensor) and value_copy.is_floating_point():
                return transform(value_copy.detach()).requires_grad_(value.requires_grad)
            return value_copy
        return cls(copy(sample.input), (copy(a) for a in sample.args), {k: copy(v) for k, v in sample.kwargs.items()})


class Call:
    """One call of ``fn`` on copies of a sample's arguments: its outputs, its leaves (the tensors that
    require grad, in argument order) and every tensor argument, as left after the call."""

    def __init__(self, fn, sample, dtype=None):
        self.input = _copy(sample.input, dtype)
        self.args = _copy(tuple(sample.args), dtype)
        self.kwargs = {k: _copy(v, dtype) for k, v in sample.kwargs.items()}
        result = fn(self.input, *self.args, **self.kwargs)
        self.outputs = result if isinstance(result, tuple) else (result,)
        self.tensors = [t for t in (self.input, *self.args, *self.kwargs.values()) if isinstance(t, torch.Tensor)]
        self.leaves = [t for t in self.tensors if t.requires_grad]

    @property
    def output(self):
        return self.outputs[0]

    def gradients(self, grad):
        if not self.leaves or not self.output.requires_grad:
            return [None] * len(self.leaves)
        return list(torch.autograd.grad(self.output, self.leaves, grad.to(self.output.dtype), allow_unused=True))


def batch_norm_magnitudes(call: Call, grad) -> list:
    """[forward, then the gradient wrt each leaf]: each entry's sum of the absolute values of its terms (float64).

    y = gamma (x - mean) inv_std + beta; training: dL/dx = gamma inv_std (delta - sum delta / M - x_hat sum delta
    x_hat / M), dL/dgamma = sum delta x_hat, dL/dbeta = sum delta over each channel's M values (eval: dL/dx =
    gamma inv_std delta)."""
    x = call.input.detach()
    names = ("running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
    given = dict(zip(names, call.args))
    given.update(call.kwargs)
    if x.numel() == 0:
        return [None] * (1 + len(call.leaves))
    c = x.shape[1]
    view = (1, c) + (1,) * (x.dim() - 2)
    dims = [d for d in range(x.dim()) if d != 1]

    def per_channel(t, default):
        return torch.full(view, default, dtype=torch.float64) if t is None else t.detach().double().reshape(view)

    gamma, beta = per_channel(given.get("weight"), 1.0), per_channel(given.get("bias"), 0.0)
    eps, training = given.get("eps", 1e-5), given.get("training", False)
    x = x.double()
    if training:
        mean, var = x.mean(dims, keepdim=True), x.var(dims, unbiased=False, keepdim=True)
    else:
        mean, var = per_channel(given["running_mean"], 0.0), per_channel(given["running_var"], 1.0)
    inv_std = (var + eps).rsqrt()
    x_hat, delta = (x - mean) * inv_std, grad.double().abs()
    forward = gamma.abs() * (x.abs() + mean.abs()) * inv_std + beta.abs()
    m = x.numel() // c
    if training:
        spread = delta + delta.sum(dims, keepdim=True) / m + x_hat.abs() * (delta * x_hat.abs()).sum(dims, keepdim=True) / m
    else:
        spread = delta
    by_leaf = {id(call.input): gamma.abs() * inv_std * spread}
    for name, value in (("weight", (delta * x_hat.abs()).sum(dims)), ("bias", delta.sum(dims))):
        if given.get(name) is not None:
            by_leaf[id(given[name])] = value
    return [forward, *(by_leaf.get(id(leaf)) for leaf in call.leaves)]


def bilinear_magnitudes(op: str, sample, grad) -> list:
    """[forward, then the gradient wrt each leaf] of native ``op`` on the absolute values of the sample's
    floating tensors, for |grad|: each entry's sum of the absolute values of its terms (float64)."""
    call = Call(NATIVE[op], Sample.cast(sample, torch.float64, torch.abs))
    return [call.output.detach(), *call.gradients(grad.double().abs())]


def judge(op: str, impl: str, sample, dtype: torch.dtype) -> tuple[str, str]:
    """('match' | 'refused' | 'mismatch', what) for one sample, cast to ``dtype``, through ``impl``'s ``op``.
    The truth is native PyTorch in float64 on the values cast to ``dtype`` (the compare core's rule: no rounding
    of the inputs differs)."""
    sample = Sample.cast(sample, dtype)
    try:
        ours = Call(getattr(get_ops(impl), op), sample)
    except Exception as error:
        return "refused", f"{type(error).__name__}: {error}"
    truth = Call(NATIVE[op], sample, torch.float64)
    native = Call(NATIVE[op], sample) if dtype != torch.float64 else None
    if len(ours.outputs) != len(truth.outputs):
        return "mismatch", f"{len(ours.outputs)} outputs, native returns {len(truth.outputs)}"
    if ours.output.shape != truth.output.shape:
        return "mismatch", f"output shape {tuple(ours.output.shape)}, native {tuple(truth.output.shape)}"
    grad = torch.randn(truth.output.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    try:
        ours_grads = ours.gradients(grad)
    except Exception as error:
        return "refused", f"backward: {type(error).__name__}: {error}"
    truth_grads, native_grads = truth.gradients(grad), (native.gradients(grad) if native else None)
    if op in BILINEAR:
        magnitudes = bilinear_magnitudes(op, sample, grad)
    elif op == "batch_norm":
        magnitudes = batch_norm_magnitudes(truth, grad)
    else:
        magnitudes = [None] * (1 + len(truth.leaves))
    checks = [("output", truth.output, ours.output, native.output if native else None, magnitudes[0])]
    for k, (t, o) in enumerate(zip(truth.outputs[1:], ours.outputs[1:]), 1):
        if not (o.dtype == t.dtype and torch.equal(o, t)):
            return "mismatch", f"output {k} (dtype {o.dtype}) differs from native's ({t.dtype})"
    for k, (t, o) in enumerate(zip(truth.tensors, ours.tensors)):
        if not t.requires_grad and t.is_floating_point():          # updated in place (running statistics)
            checks.append((f"tensor argument {k} after the call", t, o, native.tensors[k] if native else None, None))
    for k, (t, o) in enumerate(zip(truth_grads, ours_grads)):
        if t is None or o is None:
            if (t is None) != (o is None):
                return "mismatch", f"gradient {k}: {'none' if o is None else 'one'} where native has " \
                                   f"{'none' if t is None else 'one'}"
            continue
        checks.append((f"gradient {k}", t, o, native_grads[k] if native else None, magnitudes[1 + k]))
    for what, t, o, n, magnitude in checks:
        if o.dtype != (n if n is not None else t).dtype:
            return "mismatch", f"{what}: dtype {o.dtype}, native {(n if n is not None else t).dtype}"
        result = compare(t, o, n, magnitude=magnitude)
        if not result.passed:
            return "mismatch", f"{what}: {result.problem or ''} max rel {result.max_rel:.3g} > {result.tolerance:.0e}"
    return "match", ""


def allowed(impl: str, op: str, message: str) -> bool:
    return any(impl == i and op == o and fragment in message for i, o, fragment in REFUSALS)


def test_the_op_db_entries_are_what_this_test_relies_on():
    """The internal API as used here: each entry by name and variant, the native function it calls, and
    its sample count on the CPU; a SampleInput's input, args and kwargs."""
    found = dict(((op.name, op.variant_test_name), op) for op in op_db)
    assert set(ENTRIES) <= set(found), set(ENTRIES) - set(found)
    for key, name in ENTRIES.items():
        op = found[key]
        assert op.op is NATIVE[name] or getattr(op.op, "__name__", "") == NATIVE[name].__name__, (key, op.op)
        made = samples(op)
        assert len(made) == SAMPLE_COUNTS[key], (key, len(made))
        sample = made[0]
        assert isinstance(sample.input, torch.Tensor) and isinstance(sample.args, tuple) and \
            isinstance(sample.kwargs, dict)


def test_drawn_covers_every_argument_combination_and_every_input_layout():
    """Every entry's every combination of non-tensor arguments is drawn, and every input layout (shape and strides)
    of max_pool2d, the one entry thinned (to at most a tenth)."""
    layout = lambda s: (tuple(s.input.shape), s.input.stride())  # noqa: E731
    for entry, op in entries():
        made = samples(entry)
        kept = drawn(made)
        assert {_combination(s) for s in kept} == {_combination(s) for s in made}, (entry.name, entry.variant_test_name)
        assert {layout(s) for s in kept} == {layout(s) for s in made}, (entry.name, entry.variant_test_name)
        if op == "max_pool2d":
            assert len(kept) <= len(made) / EVERY or os.environ.get("OP_DB_ALL")


@pytest.fixture(scope="module")
def one_thread_each():
    """torch and numba on one thread for these thousands of tiny calls: on two busy cores, waking a second
    thread costs more than any of them (ten times the time, measured)."""
    import numba

    threads, numba_threads = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(1)
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(numba_threads)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float64", "float32"])
@pytest.mark.parametrize("impl", IMPLS)
def test_op_db_samples(one_thread_each, impl, dtype):
    """Every drawn sample of every entry matches native PyTorch, or is refused for a listed reason."""
    counts, failures = Counter(), []
    for entry, op in entries():
        for sample in drawn(samples(entry)):
            verdict, what = judge(op, impl, sample, dtype)
            counts[op, verdict] += 1
            if verdict == "mismatch" or (verdict == "refused" and not allowed(impl, op, what)):
                failures.append(f"{entry.name} {entry.variant_test_name} {verdict}: {what} "
                                f"[input {tuple(sample.input.shape)}, kwargs {sample.kwargs}]")
    assert counts, "no sample ran: the test would be vacuous"
    assert not failures, f"{len(failures)} of {sum(counts.values())} samples: " + "\n".join(failures[:20])

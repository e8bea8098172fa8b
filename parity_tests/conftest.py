"""Shared fixtures: every parity test runs once per custom implementation.

Hypothesis profiles: 'quick' (default, 25 examples per property) and 'thorough'
(500 examples): ``pytest --hypothesis-profile=thorough``.
"""

import tracemalloc
from contextlib import contextmanager

import pytest
import torch
from hypothesis import HealthCheck, settings

from simple_conv_net.compare import compare

CUSTOM_IMPLS = ("vector", "scalar")
DTYPES = (torch.float32, torch.float64)

settings.register_profile("quick", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("quick")


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's many tiny passes on one intra-op thread (more only add contention), then restore."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(params=CUSTOM_IMPLS, scope="session")
def impl(request):
    return request.param


DEVICES = ("cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="no CUDA device on this machine")))


@pytest.fixture(params=DEVICES, scope="session")
def device(request):
    return request.param


@pytest.fixture(params=DTYPES, ids=["float32", "float64"], scope="session")
def dtype(request):
    return request.param


def assert_close(name, truth, candidate, native=None, dtype=None, magnitude=None):
    """Fail with the comparison when ``candidate`` does not match ``truth`` (simple_conv_net.compare's rule)."""
    result = compare(truth, candidate, native, dtype, magnitude)
    assert result.passed, (f"{name}: {result.problem or ''} max rel {result.max_rel:.3e} > tol {result.tolerance:.0e} "
                           f"(max abs {result.max_abs:.3e}, shape {list(result.shape)}, worst {result.worst}, "
                           f"first beyond tol {result.first})")


def _leaves(inputs, device="cpu", dtype=None):
    """Fresh leaf copies of ``inputs`` (floating ones requiring grad, cast to ``dtype`` if given)."""
    def leaf(t):
        if not isinstance(t, torch.Tensor):
            return t
        t = t.detach().clone().to(device)
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        return t.requires_grad_(t.is_floating_point())
    return [leaf(t) for t in inputs]


def assert_same_gradients(custom_fn, native_fn, inputs, seed=12345, device="cpu", truth_fn=None, bilinear=False):
    """Forward outputs and the gradients wrt every floating input agree between the two functions;
    the custom one runs on ``device``, native PyTorch on the CPU, in float64 for the truth and in
    the inputs' dtype for its own error (simple_conv_net.compare). ``truth_fn`` (default
    ``native_fn``) makes the float64 truth, for a native function with side effects of its own.
    ``bilinear``: native_fn is a sum of products of its inputs (conv2d, linear), so run on their
    absolute values, forward and back, it gives each entry's magnitude of terms: where the terms
    cancel, the tolerance holds at their scale (simple_conv_net.compare)."""
    leaves = _leaves(inputs, device)
    twins = _leaves(inputs)
    truths = _leaves(inputs, dtype=torch.float64)
    out = custom_fn(*leaves)
    ref = native_fn(*twins)
    true = (truth_fn or native_fn)(*truths)
    assert out.dtype == ref.dtype, f"output dtype {out.dtype} != native {ref.dtype}"
    assert out.device.type == torch.device(device).type, f"output on {out.device}, input on {device}"
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed), dtype=ref.dtype)
    wrt = [i for i, t in enumerate(leaves) if isinstance(t, torch.Tensor) and t.requires_grad]
    magnitudes = _magnitudes(native_fn, inputs, grad, wrt) if bilinear else [None] * (len(wrt) + 1)
    assert_close("forward", true, out.cpu(), ref, magnitude=magnitudes[0])
    grads = torch.autograd.grad(out, [leaves[i] for i in wrt], grad.to(device))
    ref_grads = torch.autograd.grad(ref, [twins[i] for i in wrt], grad)
    true_grads = torch.autograd.grad(true, [truths[i] for i in wrt], grad.double())
    for i, g, r, t, m in zip(wrt, grads, ref_grads, true_grads, magnitudes[1:]):
        assert g.dtype == r.dtype
        assert_close(f"grad of input {i}", t, g.cpu(), r, magnitude=m)


def _magnitudes(bilinear_fn, inputs, grad, wrt):
    """[forward, then the gradient wrt each input in ``wrt``]: each entry's sum of the absolute values of
    the terms it adds up, in float64 - the bilinear function of the inputs' absolute values, and its
    gradients for the upstream gradient's absolute values."""
    absolute = [t.abs() if isinstance(t, torch.Tensor) else t for t in _leaves(inputs, dtype=torch.float64)]
    for t in absolute:
        if isinstance(t, torch.Tensor):
            t.requires_grad_()
    out = bilinear_fn(*absolute)
    return [out.detach(), *torch.autograd.grad(out, [absolute[i] for i in wrt], grad.double().abs())]


@contextmanager
def peak_allocation():
    """Yields a list that holds, once the block ends, the most bytes Python had allocated at once within
    it (tracemalloc: Python objects, bytes and numpy arrays; not torch's own allocator)."""
    tracemalloc.start()
    peak = []
    try:
        yield peak
    finally:
        peak.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()

"""Shared fixtures: every parity test runs once per custom implementation.

Hypothesis profiles: 'quick' (default, 25 examples per property) and 'thorough'
(500 examples): ``pytest --hypothesis-profile=thorough``.
"""

import tracemalloc
from contextlib import contextmanager

import pytest
import torch
from hypothesis import HealthCheck, settings

from simple_conv_net.parity import TOLERANCE, compare

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


def assert_close(name, reference, candidate, dtype=None):
    """Fail with the parity row when ``candidate`` is not within the dtype's tolerance of ``reference``."""
    dtype = dtype or reference.dtype
    row = compare("check", name, reference, candidate, TOLERANCE[dtype])
    assert row.passed, (f"{name}: max rel {row.max_rel:.3e} > tol {row.tolerance:.0e} "
                        f"(max abs {row.max_abs:.3e}, shape {list(row.shape)})")


def assert_same_gradients(custom_fn, native_fn, inputs, seed=12345, device="cpu"):
    """Forward outputs and the gradients wrt every floating input agree between the two functions;
    the custom one runs on ``device``, native PyTorch on the CPU."""
    leaves = [t.detach().clone().to(device).requires_grad_(t.is_floating_point()) if isinstance(t, torch.Tensor) else t
              for t in inputs]
    twins = [t.detach().clone().requires_grad_(t.is_floating_point()) if isinstance(t, torch.Tensor) else t
             for t in inputs]
    out = custom_fn(*leaves)
    ref = native_fn(*twins)
    assert out.dtype == ref.dtype, f"output dtype {out.dtype} != native {ref.dtype}"
    assert out.device.type == torch.device(device).type, f"output on {out.device}, input on {device}"
    assert_close("forward", ref, out.cpu())
    grad = torch.randn(ref.shape, generator=torch.Generator().manual_seed(seed), dtype=ref.dtype)
    wrt = [i for i, t in enumerate(leaves) if isinstance(t, torch.Tensor) and t.requires_grad]
    grads = torch.autograd.grad(out, [leaves[i] for i in wrt], grad.to(device))
    ref_grads = torch.autograd.grad(ref, [twins[i] for i in wrt], grad)
    for i, g, r in zip(wrt, grads, ref_grads):
        assert g.dtype == r.dtype
        assert_close(f"grad of input {i}", r, g.cpu())


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

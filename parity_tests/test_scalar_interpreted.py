"""The scalar kernels run interpreted too: NUMBA_DISABLE_JIT=1 turns them into plain Python.

A student steps through the loops in a debugger that way, so the same source must
give the same answers without numba's compiler. This runs every scalar op, forward
and backward, in a subprocess with the JIT disabled (the setting is read when numba
is imported), on small float64 shapes, against torch.nn.functional.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    r"""
    import sys
    import numba
    assert numba.config.DISABLE_JIT, "NUMBA_DISABLE_JIT=1 did not reach numba"
    import torch
    import torch.nn.functional as F
    import scalar_ops as S
    from scalar_ops.conv2d import conv2d_forward_loops
    assert not hasattr(conv2d_forward_loops, "py_func"), "the scalar kernels were compiled"

    torch.manual_seed(0)
    D = torch.float64
    errors = {}

    def compare(name, ours, theirs, inputs):
        mine = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
        ref = [t.detach().clone().requires_grad_(t.is_floating_point()) for t in inputs]
        y, y_ref = ours(*mine), theirs(*ref)
        assert y.dtype == D and y.shape == y_ref.shape, (name, y.dtype, y.shape, y_ref.shape)
        errors[name + " forward"] = (y - y_ref).abs().max().item()
        g = torch.randn_like(y_ref)
        grads = torch.autograd.grad(y, [t for t in mine if t.requires_grad], g)
        grads_ref = torch.autograd.grad(y_ref, [t for t in ref if t.requires_grad], g)
        for k, (a, b) in enumerate(zip(grads, grads_ref)):
            errors[f"{name} grad[{k}]"] = (a - b).abs().max().item()

    x, w, b = torch.randn(2, 2, 7, 6, dtype=D), torch.randn(3, 2, 3, 2, dtype=D), torch.randn(3, dtype=D)
    compare("conv2d s2 p1", lambda x, w, b: S.conv2d(x, w, b, stride=2, padding=1),
            lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1), [x, w, b])
    compare("conv2d s(2,1) p(0,1) no bias", lambda x, w: S.conv2d(x, w, None, stride=(2, 1), padding=(0, 1)),
            lambda x, w: F.conv2d(x, w, None, stride=(2, 1), padding=(0, 1)), [x, w])
    x5, w5 = torch.randn(1, 5, 4, 7, dtype=D), torch.randn(3, 5, 2, 5, dtype=D)   # the fast path: rows of 5 taps
    compare("conv2d rows of 5 taps", lambda x, w, b: S.conv2d(x, w, b), lambda x, w, b: F.conv2d(x, w, b), [x5, w5, b])
    compare("conv2d dilation groups 'same'", lambda x, w: S.conv2d(x, w, None, 1, "same", (2, 3), 2),
            lambda x, w: F.conv2d(x, w, None, 1, "same", (2, 3), 2),
            [torch.randn(1, 4, 6, 7, dtype=D), torch.randn(4, 2, 3, 2, dtype=D)])
    compare("max_pool2d 3/2/1", lambda x: S.max_pool2d(x, 3, 2, 1), lambda x: F.max_pool2d(x, 3, 2, 1),
            [torch.randn(2, 2, 7, 6, dtype=D)])
    compare("max_pool2d dilation ceil_mode", lambda x: S.max_pool2d(x, 2, 2, 1, (2, 1), True),
            lambda x: F.max_pool2d(x, 2, 2, 1, (2, 1), True), [torch.randn(1, 2, 7, 6, dtype=D)])
    compare("max_pool2d ties", lambda x: S.max_pool2d(x, 3, 2, 1), lambda x: F.max_pool2d(x, 3, 2, 1),
            [torch.randint(0, 2, (2, 2, 7, 6)).to(D)])
    compare("relu", S.relu, F.relu, [torch.randn(3, 5, dtype=D)])
    compare("flatten", lambda x: S.flatten(x, 1), lambda x: torch.flatten(x, 1), [torch.randn(2, 3, 4, 5, dtype=D)])
    compare("linear", S.linear, F.linear, [torch.randn(4, 7, dtype=D), torch.randn(5, 7, dtype=D), torch.randn(5, dtype=D)])
    compare("log_softmax", lambda x: S.log_softmax(x, 1), lambda x: F.log_softmax(x, dim=1),
            [10 * torch.randn(4, 6, dtype=D)])
    target = torch.tensor([1, 0, 3, 2, 2])
    for reduction in ("mean", "sum", "none"):
        compare("nll_loss " + reduction, lambda y: S.nll_loss(y, target, reduction=reduction),
                lambda y: F.nll_loss(y, target, reduction=reduction),
                [F.log_softmax(torch.randn(5, 4, dtype=D), dim=1)])
        weight, targets = torch.rand(4, dtype=D), torch.tensor([[1, 0], [3, 2], [2, 2]])
        compare("nll_loss weight ignore_index K-dim " + reduction,
                lambda y: S.nll_loss(y, targets, weight, ignore_index=2, reduction=reduction),
                lambda y: F.nll_loss(y, targets, weight, ignore_index=2, reduction=reduction),
                [F.log_softmax(torch.randn(3, 4, 2, dtype=D), dim=1)])

    for name, error in errors.items():
        print(f"{name:<36} max abs error {error:.3g}")
    bad = {name: error for name, error in errors.items() if not error <= 1e-12}
    assert not bad, f"interpreted scalar ops differ from torch: {bad}"
    print("OK", len(errors), "comparisons")
    """
)


def test_scalar_ops_run_interpreted_with_jit_disabled():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1", PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    ))
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    print(result.stdout)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "OK" in result.stdout

"""torch.autograd.gradcheck (finite differences vs the hand-written backward) on every Function, float64."""

import pytest
import torch
from torch.autograd import gradcheck

from simple_conv_net.backends import get_ops


def leaf(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64,
                       requires_grad=True)


def distinct_leaf(*shape, seed):
    """Values at least 0.01 apart, so a finite-difference step of 1e-6 never changes which one is the max."""
    count = 1
    for size in shape:
        count *= size
    perm = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return (perm.to(torch.float64) * 0.01).reshape(shape).requires_grad_()


CASES = {
    "conv2d": lambda ops: (lambda x, w, b: ops.conv2d(x, w, b, (2, 1), (1, 2)),
                           (leaf(2, 2, 5, 4, seed=0), leaf(3, 2, 3, 2, seed=1), leaf(3, seed=2))),
    "max_pool2d": lambda ops: (lambda x: ops.max_pool2d(x, 3, 2, 1), (distinct_leaf(2, 2, 5, 6, seed=3),)),
    "relu": lambda ops: (ops.relu, (distinct_leaf(3, 7, seed=4) - 0.105,)),
    "linear": lambda ops: (ops.linear, (leaf(4, 5, seed=5), leaf(3, 5, seed=6), leaf(3, seed=7))),
    "flatten": lambda ops: (lambda x: ops.flatten(x, 1, 2), (leaf(2, 3, 4, 2, seed=8),)),
    "log_softmax": lambda ops: (lambda x: ops.log_softmax(x, 0), (leaf(4, 3, seed=9),)),
    "nll_loss": lambda ops: (lambda x: ops.nll_loss(x, torch.tensor([2, 0, 1, 2])), (leaf(4, 3, seed=10),)),
    "nll_loss-none": lambda ops: (lambda x: ops.nll_loss(x, torch.tensor([1, 0]), reduction="none"),
                                  (leaf(2, 3, seed=11),)),
}


@pytest.mark.parametrize("name", CASES)
def test_gradcheck(impl, name):
    fn, inputs = CASES[name](get_ops(impl))
    assert gradcheck(fn, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)

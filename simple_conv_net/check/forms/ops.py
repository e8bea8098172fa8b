"""The ops the checker knows: the maths of a function (its named inputs, in a fixed order) and native PyTorch's twin.

An *op* is what a candidate function computes, whatever a form calls it: conv2d, max_pool2d, ...
Its inputs are tensors named in the native function's argument order; options (stride, padding,
...) are passed to native by keyword. Native PyTorch on the canonical inputs is the oracle
(:mod:`..oracle`); the forms map the same inputs onto their own arguments (see :mod:`.base`).
A form may add ops of its own with :func:`register_op` (the cs231n form's batch norm, whose
running statistics follow the handout's momentum convention, for one).

Imported by the checker's child processes too, so it needs torch alone.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F


def _diff_mse(x, y):
    """The homework's measure, as a 0-d tensor: mean((x - y)^2) over all entries."""
    return ((x.reshape(-1) - y.reshape(-1)) ** 2).mean()


def _conv_weight2rows(conv_weight):
    return conv_weight.reshape(conv_weight.shape[0], -1)


def _im2col(input, kernel_size):
    """[N, C_in, H, W] -> [N, C_in*K*K, H_out*W_out], stride 1, no padding: column (m, l) is window (m, l)."""
    return F.unfold(input, kernel_size)


class Op(NamedTuple):
    inputs: tuple[str, ...]          # tensor inputs, in the native function's argument order
    differentiable: tuple[str, ...]  # those a gradient is checked for
    native: Callable                 # native(*inputs, **options)


OPS: dict[str, Op] = {
    "conv2d": Op(("input", "weight", "bias"), ("input", "weight", "bias"), F.conv2d),
    "max_pool2d": Op(("input",), ("input",), F.max_pool2d),
    "relu": Op(("input",), ("input",), F.relu),
    "flatten": Op(("input",), ("input",), torch.flatten),
    "linear": Op(("input", "weight", "bias"), ("input", "weight", "bias"), F.linear),
    "log_softmax": Op(("input",), ("input",), F.log_softmax),
    "nll_loss": Op(("input", "target", "weight"), ("input",), F.nll_loss),
    "batch_norm": Op(("input", "running_mean", "running_var", "weight", "bias"), ("input", "weight", "bias"),
                     F.batch_norm),
    "diff_mse": Op(("x", "y"), (), _diff_mse),
    "im2col": Op(("input",), (), _im2col),
    "conv_weight2rows": Op(("weight",), (), _conv_weight2rows),
}


def register_op(name: str, op: Op) -> Op:
    """Add a form's own op (an error if the name is taken by another op)."""
    if OPS.get(name, op) != op:
        raise ValueError(f"op {name!r} is already registered as another op")
    OPS[name] = op
    return op


def native_call(op: str, inputs: dict, options: dict):
    """Native PyTorch's result of ``op`` on ``inputs`` (name -> tensor; a missing one is None)."""
    spec = OPS[op]
    return spec.native(*(inputs.get(name) for name in spec.inputs), **options)

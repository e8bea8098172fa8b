"""A custom-op module written against the older torch.nn.functional signatures, correct on what it takes.

conv2d(input, weight, bias, stride, padding) with an int or a pair as padding, max_pool2d(input, kernel_size,
stride, padding), log_softmax(input, dim), nll_loss(input, target, reduction) on [N, C] inputs: no dilation,
groups, 'same' padding, ceil_mode, return_indices, dtype, class weights, ignore_index or K-dimensional losses.
The checker judges it on what it takes (every function passes) and reports each newer argument as not accepted.
"""

import torch

import vector_ops
from vector_ops import batch_norm, flatten, linear, relu  # noqa: F401


def conv2d(input, weight, bias=None, stride=1, padding=0):
    p_h, p_w = (padding, padding) if isinstance(padding, int) else padding      # an int or a pair
    return vector_ops.conv2d(input, weight, bias, stride, (p_h, p_w))


def max_pool2d(input, kernel_size, stride=None, padding=0):
    return vector_ops.max_pool2d(input, kernel_size, stride, padding)


def log_softmax(input, dim):
    return vector_ops.log_softmax(input, dim)


def nll_loss(input, target, reduction="mean"):
    """-input[n, target[n]] for input [N, C], reduced."""
    losses = -input[torch.arange(input.shape[0]), target]
    return {"mean": losses.mean, "sum": losses.sum}.get(reduction, lambda: losses)()

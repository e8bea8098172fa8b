"""A custom-op module in the functional form whose conv2d and max_pool2d take dilation and never use it.

The checker's dilation hypothesis: the output is native's at dilation 1. Every other op, and every other argument,
is vector_ops'.
"""

import vector_ops
from vector_ops import batch_norm, flatten, linear, log_softmax, nll_loss, relu  # noqa: F401


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    return vector_ops.conv2d(input, weight, bias, stride, padding, 1, groups)           # dilation never passed on


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
    return vector_ops.max_pool2d(input, kernel_size, stride, padding, 1, ceil_mode, return_indices)

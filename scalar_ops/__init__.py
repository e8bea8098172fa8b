"""Scalar ops: each layer's equation as literal loops over scalar indices, forward and backward.

The twin of ``vector_ops``, file for file, with the same signatures (those of
PyTorch's functional API). Every kernel is the homework's equation (seed 000 eqs. 1-5, and
eq. 6 for the output delta) written one multiply-add at a time and compiled with numba
(see ``scalar_ops._numba``); with ``NUMBA_DISABLE_JIT=1`` the same loops run as plain
Python, for stepping through in a debugger. float32 or float64; CPU tensors run these loops,
CUDA tensors their twins in ``scalar_ops.cuda`` (one GPU thread per output element).
"""

from scalar_ops.batch_norm import batch_norm
from scalar_ops.conv2d import conv2d
from scalar_ops.flatten import flatten
from scalar_ops.linear import linear
from scalar_ops.log_softmax import log_softmax
from scalar_ops.nll_loss import nll_loss
from scalar_ops.pool2d import max_pool2d
from scalar_ops.relu import relu

__all__ = ["conv2d", "max_pool2d", "relu", "linear", "flatten", "log_softmax", "nll_loss", "batch_norm"]

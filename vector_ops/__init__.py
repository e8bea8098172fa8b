"""Vectorized ops: each layer's equation as tensor algebra (im2col + matrix products), forward and backward.

Each op has the signature of its PyTorch functional twin; scalar_ops holds the same
equations as literal loops, file for file.
"""

from vector_ops.batch_norm import batch_norm
from vector_ops.conv2d import conv2d, im2col
from vector_ops.flatten import flatten
from vector_ops.linear import linear
from vector_ops.log_softmax import log_softmax
from vector_ops.nll_loss import nll_loss
from vector_ops.pool2d import max_pool2d
from vector_ops.relu import relu

__all__ = ["conv2d", "max_pool2d", "relu", "linear", "flatten", "log_softmax", "nll_loss", "batch_norm", "im2col"]

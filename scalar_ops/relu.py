"""ReLU as a literal loop over every element: z = max(a, 0), written z = 0 if a <= 0 else a.

The comparison keeps NaN (NaN <= 0 is false, so NaN passes through), as PyTorch's relu does.
The tensor is walked as one flat row of its contiguous memory, so any shape works.
"""

import numpy as np

from scalar_ops._dispatch import registered
from scalar_ops._numba import as_array, as_tensor, jit, prange
from simple_conv_net.functions import Kernels, relu_op


@jit
def relu_forward_loops(a, z):
    for k in prange(a.shape[0]):
        z[k] = a.dtype.type(0) if a[k] <= 0 else a[k]               # z = max(a, 0)


@jit
def relu_backward_loops(delta, z, da):
    for k in prange(z.shape[0]):
        da[k] = delta.dtype.type(0) if z[k] <= 0 else delta[k]      # dz/da = 0 where z <= 0, else 1


def relu_forward(x):
    a = as_array("relu", "input", x)
    z = np.empty_like(a)
    relu_forward_loops(a.reshape(-1), z.reshape(-1))
    return as_tensor(z)


def relu_backward(grad_z, z):
    """The delta rule for z = max(a, 0): dz/da is 1 where a > 0 (equivalently z > 0) and 0
    where a < 0, taken as 0 at a = 0 as PyTorch does, so

        dL/da[k] = 0 if z[k] <= 0 else delta[k]

    (a NaN output, for which z <= 0 is false, passes its delta through, as PyTorch does).
    """
    delta = as_array("relu", "grad_output", grad_z)
    out = as_array("relu", "output", z)
    da = np.empty_like(delta)
    relu_backward_loops(delta.reshape(-1), out.reshape(-1), da.reshape(-1))
    return as_tensor(da)


relu = relu_op(registered(Kernels(relu_forward, relu_backward)))

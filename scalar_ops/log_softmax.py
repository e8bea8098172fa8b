"""Log-softmax along the rows of a matrix as literal loops, shifted by the row maximum:

    mx[r]   = max_c x[r, c]
    lse[r]  = log(sum_c exp(x[r, c] - mx[r]))
    y[r, c] = x[r, c] - mx[r] - lse[r]                         x, y [R, C]

(the softmax of seed 000's output layer, in log form; subtracting mx[r] changes nothing
mathematically but keeps exp from overflowing). The functions.py glue hands the kernels
a contiguous [R, C] matrix with the softmax dimension last.
"""

import numpy as np

from scalar_ops._dispatch import registered
from scalar_ops._numba import as_array, as_tensor, jit, prange
from simple_conv_net.functions import Kernels, log_softmax_op


@jit(fastmath=True)
def log_softmax_forward_loops(x, y):
    rows, cols = x.shape
    for r in prange(rows):
        mx = x.dtype.type(-np.inf)
        for c in range(cols):
            if x[r, c] > mx:
                mx = x[r, c]                                   # mx[r] = max_c x[r,c]
        s = x.dtype.type(0)
        for c in range(cols):
            s += np.exp(x[r, c] - mx)                          # sum_c exp(x[r,c] - mx[r])
        lse = np.log(s)
        for c in range(cols):
            y[r, c] = x[r, c] - mx - lse                       # y[r,c] = x[r,c] - mx[r] - lse[r]


@jit(fastmath=True)
def log_softmax_backward_loops(delta, y, dx):
    rows, cols = y.shape
    for r in prange(rows):
        s = delta.dtype.type(0)
        for k in range(cols):
            s += delta[r, k]                                   # sum_k delta[r,k]
        for c in range(cols):
            dx[r, c] = delta[r, c] - np.exp(y[r, c]) * s       # delta[r,c] - softmax[r,c] * sum_k delta[r,k]


def log_softmax_forward(x):
    a = as_array("log_softmax", "input", x)
    y = np.empty_like(a)
    log_softmax_forward_loops(a, y)
    return as_tensor(y)


def log_softmax_backward(grad_y, y):
    """The delta rule for y[r,k] = x[r,k] - log(sum_c exp(x[r,c])): with softmax[r,c] = exp(y[r,c]),

        dy[r,k]/dx[r,c] = [k = c] - softmax[r,c]

    so with delta = dL/dy,

        dL/dx[r,c] = sum_k delta[r,k] ([k = c] - softmax[r,c])
                   = delta[r,c] - exp(y[r,c]) * sum_k delta[r,k].

    Followed by nll_loss ('mean', delta[n,k] = -[k = t_n] / N) this is seed 000 eq. 6:
    dL/dx[n,c] = (softmax[n,c] - [c = t_n]) / N, i.e. y_k - t_k per sample.
    """
    delta = as_array("log_softmax", "grad_output", grad_y)
    out = as_array("log_softmax", "output", y)
    dx = np.empty_like(delta)
    log_softmax_backward_loops(delta, out, dx)
    return as_tensor(dx)


log_softmax = log_softmax_op(registered(Kernels(log_softmax_forward, log_softmax_backward)))

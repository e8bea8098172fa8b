"""Log-softmax along the rows of a matrix as CUDA kernels, one thread per row, as ``scalar_ops.log_softmax``:

    mx[r]   = max_c x[r, c]
    lse[r]  = log(sum_c exp(x[r, c] - mx[r]))
    y[r, c] = x[r, c] - mx[r] - lse[r]                         x, y [R, C]

(the softmax of seed 000's output layer, in log form, shifted by the row maximum so exp
cannot overflow). A row's outputs all need its max and sum, so one thread owns a row.
"""

import math

from numba import cuda

from scalar_ops.cuda import _device


@cuda.jit
def log_softmax_forward_kernel(x, y):
    rows, cols = x.shape
    r = cuda.grid(1)
    if r >= rows:
        return
    mx = x.dtype.type(-math.inf)
    for c in range(cols):
        if x[r, c] > mx:
            mx = x[r, c]                                       # mx[r] = max_c x[r,c]
    s = x.dtype.type(0)
    for c in range(cols):
        s += math.exp(x[r, c] - mx)                            # sum_c exp(x[r,c] - mx[r])
    lse = math.log(s)
    for c in range(cols):
        y[r, c] = x[r, c] - mx - lse                           # y[r,c] = x[r,c] - mx[r] - lse[r]


@cuda.jit
def log_softmax_backward_kernel(delta, y, dx):
    rows, cols = y.shape
    r = cuda.grid(1)
    if r >= rows:
        return
    s = delta.dtype.type(0)
    for k in range(cols):
        s += delta[r, k]                                       # sum_k delta[r,k]
    for c in range(cols):
        dx[r, c] = delta[r, c] - math.exp(y[r, c]) * s         # delta[r,c] - softmax[r,c] * sum_k delta[r,k]


def log_softmax_forward(x):
    a = _device.checked("log_softmax", "input", x)
    y = _device.empty(a.shape, a.dtype, a)
    _device.launch(log_softmax_forward_kernel, a.shape[0], a, y)
    return y


def log_softmax_backward(grad_y, y):
    """The delta rule of ``scalar_ops.log_softmax.log_softmax_backward``, one thread per row:

        dL/dx[r,c] = delta[r,c] - exp(y[r,c]) * sum_k delta[r,k]

    which after nll_loss ('mean') is seed 000 eq. 6, (softmax[n,c] - [c = t_n]) / N.
    """
    delta = _device.checked("log_softmax", "grad_output", grad_y)
    out = _device.checked("log_softmax", "output", y)
    dx = _device.empty(delta.shape, delta.dtype, delta)
    _device.launch(log_softmax_backward_kernel, delta.shape[0], delta, out, dx)
    return dx

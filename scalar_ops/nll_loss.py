"""Negative log-likelihood of the target classes as literal loops:

    'none':  loss[n] = -y[n, t_n]                  y [N, C] log-probabilities, t [N] class indices
    'sum':   L = sum_n -y[n, t_n]
    'mean':  L = (1/N) sum_n -y[n, t_n]

After log_softmax this is the cross-entropy whose output delta is seed 000 eq. 6.
"""

import numpy as np

from scalar_ops._dispatch import registered
from scalar_ops._numba import INDEX, as_array, as_tensor, jit
from simple_conv_net.functions import Kernels, nll_loss_op

NONE, SUM, MEAN = 0, 1, 2
_CODES = {"none": NONE, "sum": SUM, "mean": MEAN}


@jit(parallel=False)
def nll_loss_forward_loops(y, target, reduction, out):
    n_batch = y.shape[0]
    if reduction == NONE:
        for n in range(n_batch):
            out[n] = -y[n, target[n]]                 # loss[n] = -y[n, t_n]
    else:
        s = y.dtype.type(0)
        for n in range(n_batch):
            s -= y[n, target[n]]                      # L = sum_n -y[n, t_n]
        if reduction == MEAN:
            s = s / y.dtype.type(n_batch)             # (1/N) sum_n ... (NaN for N = 0, as PyTorch)
        out[0] = s


@jit(parallel=False)
def nll_loss_backward_loops(g, target, reduction, dy):
    n_batch, c = dy.shape
    for n in range(n_batch):
        for k in range(c):
            dy[n, k] = dy.dtype.type(0)
        if reduction == NONE:
            dy[n, target[n]] = -g[n]                  # dL/dy[n, t_n] = -g[n]
        elif reduction == SUM:
            dy[n, target[n]] = -g[0]                  # dL/dy[n, t_n] = -g
        else:
            dy[n, target[n]] = -g[0] / dy.dtype.type(n_batch)     # dL/dy[n, t_n] = -g / N


def nll_loss_forward(y, target, reduction):
    logp = as_array("nll_loss", "input", y)
    t = as_array("nll_loss", "target", target, dtypes=INDEX)
    out = np.empty(logp.shape[0] if reduction == "none" else 1, logp.dtype)
    nll_loss_forward_loops(logp, t, _CODES[reduction], out)
    return as_tensor(out if reduction == "none" else out.reshape(()))


def nll_loss_backward(grad_loss, target, input_shape, reduction):
    """The delta rule for L = -(1/N) sum_n y[n, t_n] ('mean'): L depends on y[n, c] only for
    c = t_n, with slope -1/N, so with g = dL_total/dL,

        dL/dy[n, c] = -[c = t_n] * g_n,   g_n = g/N ('mean'), g ('sum'), g[n] ('none').

    Through log_softmax this becomes seed 000 eq. 6, delta = (y_k - t_k) / N.
    """
    g = as_array("nll_loss", "grad_output", grad_loss)
    t = as_array("nll_loss", "target", target, dtypes=INDEX)
    dy = np.empty(tuple(input_shape), g.dtype)
    nll_loss_backward_loops(g.reshape(-1), t, _CODES[reduction], dy)
    return as_tensor(dy)


nll_loss = nll_loss_op(registered(Kernels(nll_loss_forward, nll_loss_backward)))

"""Negative log-likelihood of the target classes as literal loops, on y folded to [N, C, L] (L positions per
sample; the homework's [N, C] input is L = 1), t [N, L] class indices:

    w_t[n, l] = weight[t[n, l]] (1 without weights), and 0 where t[n, l] = ignore_index
    'none':  loss[n, l] = -w_t[n, l] * y[n, t[n, l], l]
    'sum':   L = sum_{n, l} loss[n, l]
    'mean':  L = sum_{n, l} loss[n, l] / sum_{n, l} w_t[n, l]       (the weighted mean)

Without weights and ignored targets, 'mean' is -(1/N) sum_n y[n, t_n]; after log_softmax this is the
cross-entropy whose output delta is seed 000 eq. 6.
"""

import numpy as np

from scalar_ops._dispatch import registered
from scalar_ops._numba import INDEX, as_array, as_tensor, jit
from simple_conv_net.functions import Kernels, nll_loss_op

NONE, SUM, MEAN = 0, 1, 2
_CODES = {"none": NONE, "sum": SUM, "mean": MEAN}


@jit(parallel=False)
def target_weight(t, weight, ignore_index, one):
    """w_t: 0 for an ignored target, else weight[t] (``one`` without weights)."""
    if t == ignore_index:
        return one * 0
    if weight is None:
        return one
    return weight[t]


@jit(parallel=False)
def nll_loss_forward_loops(y, target, weight, ignore_index, reduction, out):
    n_batch, _, length = y.shape
    one = y.dtype.type(1)
    s = y.dtype.type(0)
    total = y.dtype.type(0)
    for n in range(n_batch):
        for l in range(length):
            t = target[n, l]
            w_t = target_weight(t, weight, ignore_index, one)
            loss = y.dtype.type(0)
            if t != ignore_index:
                loss = -w_t * y[n, t, l]              # loss[n, l] = -w_t y[n, t[n,l], l]
            if reduction == NONE:
                out[n * length + l] = loss
            else:
                s += loss                             # L = sum_{n,l} loss[n, l]
                total += w_t                          #     sum_{n,l} w_t[n, l]
    if reduction == MEAN:
        s = s / total                                 # the weighted mean (NaN when nothing counts, as PyTorch)
    if reduction != NONE:
        out[0] = s


@jit(parallel=False)
def nll_loss_backward_loops(g, target, weight, ignore_index, reduction, dy):
    n_batch, c, length = dy.shape
    one = dy.dtype.type(1)
    total = one
    if reduction == MEAN:
        total = dy.dtype.type(0)
        for n in range(n_batch):
            for l in range(length):
                total += target_weight(target[n, l], weight, ignore_index, one)     # sum w_t
    for n in range(n_batch):
        for k in range(c):
            for l in range(length):
                dy[n, k, l] = dy.dtype.type(0)
        for l in range(length):
            t = target[n, l]
            if t == ignore_index:
                continue                              # an ignored target: the loss holds no y[n, ., l]
            w_t = target_weight(t, weight, ignore_index, one)
            if reduction == NONE:
                dy[n, t, l] = -w_t * g[n * length + l]   # dL/dy[n, t, l] = -w_t g[n, l]
            elif reduction == SUM:
                dy[n, t, l] = -w_t * g[0]                # dL/dy[n, t, l] = -w_t g
            else:
                dy[n, t, l] = -w_t * g[0] / total        # dL/dy[n, t, l] = -w_t g / sum w_t


def nll_loss_forward(y, target, weight, ignore_index, reduction):
    logp = as_array("nll_loss", "input", y)
    t = as_array("nll_loss", "target", target, dtypes=INDEX)
    w = None if weight is None else as_array("nll_loss", "weight", weight)
    out = np.empty(t.size if reduction == "none" else 1, logp.dtype)
    nll_loss_forward_loops(logp, t, w, ignore_index, _CODES[reduction], out)
    return as_tensor(out.reshape(t.shape) if reduction == "none" else out.reshape(()))


def nll_loss_backward(grad_loss, target, weight, input_shape, ignore_index, reduction):
    """The delta rule for L = -sum_{n,l} w_t y[n, t[n,l], l] / sum w_t ('mean'): L depends on y[n, c, l] only
    for c = t[n, l] (not an ignored target), with slope -w_t / sum w_t, so with g = dL_total/dL,

        dL/dy[n, c, l] = -[c = t[n, l]] * w_t[n, l] * g_nl,   g_nl = g / sum w_t ('mean'), g ('sum'), g[n, l] ('none').

    Without weights or ignored targets, through log_softmax, this becomes seed 000 eq. 6, delta = (y_k - t_k) / N.
    """
    g = as_array("nll_loss", "grad_output", grad_loss)
    t = as_array("nll_loss", "target", target, dtypes=INDEX)
    w = None if weight is None else as_array("nll_loss", "weight", weight)
    dy = np.empty(tuple(input_shape), g.dtype)
    nll_loss_backward_loops(g.reshape(-1), t, w, ignore_index, _CODES[reduction], dy)
    return as_tensor(dy)


nll_loss = nll_loss_op(registered(Kernels(nll_loss_forward, nll_loss_backward)))

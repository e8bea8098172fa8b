"""Negative log-likelihood of the target classes as CUDA kernels, as ``scalar_ops.nll_loss`` (which see), on y
folded to [N, C, L], t [N, L]:

    w_t[n, l] = weight[t[n, l]] (1 without weights), and 0 where t[n, l] = ignore_index
    'none':  loss[n, l] = -w_t[n, l] * y[n, t[n, l], l]
    'sum':   L = sum_{n, l} loss[n, l]
    'mean':  L = sum_{n, l} loss[n, l] / sum_{n, l} w_t[n, l]       (the weighted mean)

One thread per output element: per position for 'none'; for 'sum' and 'mean' the output is one number, so
one thread adds the terms in (n, l) order (deterministic, no atomics). The backward runs one thread per
element of dL/dy, each summing the weights again for 'mean'. After log_softmax this is the cross-entropy
whose output delta is seed 000 eq. 6.
"""

from numba import cuda

from scalar_ops.cuda import _device

NONE, SUM, MEAN = 0, 1, 2
_CODES = {"none": NONE, "sum": SUM, "mean": MEAN}


@cuda.jit
def nll_loss_forward_kernel(y, target, weight, ignore_index, reduction, out):
    # (w_t written out in each kernel, no helper: a device function would need a GPU to compile for)
    n_batch, _, length = y.shape
    t = cuda.grid(1)
    if reduction == NONE:
        if t < n_batch * length:
            n = t // length
            l = t % length
            c = target[n, l]
            out[t] = y.dtype.type(0)
            if c != ignore_index:
                w_t = y.dtype.type(1) if weight is None else weight[c]
                out[t] = -w_t * y[n, c, l]                                  # loss[n, l] = -w_t y[n, t[n,l], l]
    elif t == 0:
        s = y.dtype.type(0)
        total = y.dtype.type(0)
        for n in range(n_batch):
            for l in range(length):
                c = target[n, l]
                if c != ignore_index:
                    w_t = y.dtype.type(1) if weight is None else weight[c]
                    s += -w_t * y[n, c, l]                                  # L = sum_{n,l} loss[n, l]
                    total += w_t                                            #     sum_{n,l} w_t[n, l]
        if reduction == MEAN:
            s = s / total                                                   # the weighted mean (NaN if nothing counts)
        out[0] = s


@cuda.jit
def nll_loss_backward_kernel(g, target, weight, ignore_index, reduction, dy):
    n_batch, c, length = dy.shape
    t = cuda.grid(1)
    if t >= n_batch * c * length:
        return
    l = t % length
    k = t // length % c
    n = t // (length * c)
    target_class = target[n, l]
    if k != target_class or target_class == ignore_index:
        dy[n, k, l] = dy.dtype.type(0)
        return
    w_t = dy.dtype.type(1) if weight is None else weight[target_class]
    if reduction == NONE:
        dy[n, k, l] = -w_t * g[n * length + l]                            # dL/dy[n, t, l] = -w_t g[n, l]
    elif reduction == SUM:
        dy[n, k, l] = -w_t * g[0]                                         # dL/dy[n, t, l] = -w_t g
    else:
        total = dy.dtype.type(0)
        for m in range(n_batch):
            for q in range(length):
                if target[m, q] != ignore_index:
                    total += dy.dtype.type(1) if weight is None else weight[target[m, q]]   # sum w_t
        dy[n, k, l] = -w_t * g[0] / total                                 # dL/dy[n, t, l] = -w_t g / sum w_t


def nll_loss_forward(y, target, weight, ignore_index, reduction):
    logp = _device.checked("nll_loss", "input", y)
    t = _device.checked("nll_loss", "target", target, dtypes=_device.INDEX)
    w = None if weight is None else _device.checked("nll_loss", "weight", weight)
    out = _device.empty((t.numel(),) if reduction == "none" else (1,), logp.dtype, logp)
    _device.launch(nll_loss_forward_kernel, out.numel(), logp, t, w, ignore_index, _CODES[reduction], out)
    return out.reshape(t.shape) if reduction == "none" else out.reshape(())


def nll_loss_backward(grad_loss, target, weight, input_shape, ignore_index, reduction):
    """The delta rule of ``scalar_ops.nll_loss.nll_loss_backward``, one thread per element of dL/dy:

        dL/dy[n, c, l] = -[c = t[n, l]] * w_t[n, l] * g_nl,   g_nl = g / sum w_t ('mean'), g ('sum'), g[n, l] ('none').
    """
    g = _device.checked("nll_loss", "grad_output", grad_loss)
    t = _device.checked("nll_loss", "target", target, dtypes=_device.INDEX)
    w = None if weight is None else _device.checked("nll_loss", "weight", weight)
    dy = _device.empty(tuple(input_shape), g.dtype, g)
    _device.launch(nll_loss_backward_kernel, dy.numel(), g.reshape(-1), t, w, ignore_index, _CODES[reduction], dy)
    return dy

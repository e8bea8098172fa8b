"""Negative log-likelihood of the target classes as CUDA kernels, as ``scalar_ops.nll_loss``:

    'none':  loss[n] = -y[n, t_n]                  y [N, C] log-probabilities, t [N] class indices
    'sum':   L = sum_n -y[n, t_n]
    'mean':  L = (1/N) sum_n -y[n, t_n]

One thread per output element: per sample for 'none'; for 'sum' and 'mean' the output is
one number, so one thread adds the N terms in sample order (deterministic, no atomics).
The backward runs one thread per element of dL/dy. After log_softmax this is the
cross-entropy whose output delta is seed 000 eq. 6.
"""

from numba import cuda

from scalar_ops.cuda import _device

NONE, SUM, MEAN = 0, 1, 2
_CODES = {"none": NONE, "sum": SUM, "mean": MEAN}


@cuda.jit
def nll_loss_forward_kernel(y, target, reduction, out):
    n_batch = y.shape[0]
    t = cuda.grid(1)
    if reduction == NONE:
        if t < n_batch:
            out[t] = -y[t, target[t]]                 # loss[n] = -y[n, t_n]
    elif t == 0:
        s = y.dtype.type(0)
        for n in range(n_batch):
            s -= y[n, target[n]]                      # L = sum_n -y[n, t_n]
        if reduction == MEAN:
            s = s / y.dtype.type(n_batch)             # (1/N) sum_n ... (NaN for N = 0, as PyTorch)
        out[0] = s


@cuda.jit
def nll_loss_backward_kernel(g, target, reduction, dy):
    n_batch, c = dy.shape
    t = cuda.grid(1)
    if t >= n_batch * c:
        return
    k = t % c
    n = t // c
    if k != target[n]:
        dy[n, k] = dy.dtype.type(0)
    elif reduction == NONE:
        dy[n, k] = -g[n]                              # dL/dy[n, t_n] = -g[n]
    elif reduction == SUM:
        dy[n, k] = -g[0]                              # dL/dy[n, t_n] = -g
    else:
        dy[n, k] = -g[0] / dy.dtype.type(n_batch)     # dL/dy[n, t_n] = -g / N


def nll_loss_forward(y, target, reduction):
    logp = _device.checked("nll_loss", "input", y)
    t = _device.checked("nll_loss", "target", target, dtypes=_device.INDEX)
    out = _device.empty((logp.shape[0],) if reduction == "none" else (1,), logp.dtype, logp)
    _device.launch(nll_loss_forward_kernel, out.numel(), logp, t, _CODES[reduction], out)
    return out if reduction == "none" else out.reshape(())


def nll_loss_backward(grad_loss, target, input_shape, reduction):
    """The delta rule of ``scalar_ops.nll_loss.nll_loss_backward``, one thread per element of dL/dy:

        dL/dy[n, c] = -[c = t_n] * g_n,   g_n = g/N ('mean'), g ('sum'), g[n] ('none').
    """
    g = _device.checked("nll_loss", "grad_output", grad_loss)
    t = _device.checked("nll_loss", "target", target, dtypes=_device.INDEX)
    dy = _device.empty(tuple(input_shape), g.dtype, g)
    _device.launch(nll_loss_backward_kernel, dy.numel(), g.reshape(-1), t, _CODES[reduction], dy)
    return dy

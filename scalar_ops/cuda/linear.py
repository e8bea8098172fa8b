"""Fully connected layer as CUDA kernels, one thread per output element (seed 000 eq. 5), 0-based:

    z[n, j] = sum_{i} w[j, i] * a[n, i] + b[j]      a [N, D], w [P, D], b [P] -> z [N, P]

the same literal sum as ``scalar_ops.linear``, in the same order (i ascending, then the
bias), by the one thread that owns z[n, j]. The gradients are gathers too: one thread
per dL/da[n,i] (summing over j), per dL/dw[j,i] (summing over the batch), per dL/db[j].
"""

from numba import cuda

from scalar_ops.cuda import _device


@cuda.jit
def linear_forward_kernel(a, w, b, z):
    n_batch, d = a.shape
    p = w.shape[0]
    t = cuda.grid(1)
    if t >= n_batch * p:
        return
    j = t % p
    n = t // p
    s = z.dtype.type(0)
    for i in range(d):
        s += w[j, i] * a[n, i]                         # seed 000 eq. 5: z[n,j] = sum_i w[j,i] a[n,i]
    if b is not None:
        s += b[j]                                      #                         + b[j]
    z[n, j] = s


@cuda.jit
def linear_input_grad_kernel(delta, w, da):
    n_batch, d = da.shape
    p = w.shape[0]
    t = cuda.grid(1)
    if t >= n_batch * d:
        return
    i = t % d
    n = t // d
    s = da.dtype.type(0)
    for j in range(p):
        s += delta[n, j] * w[j, i]                     # dL/da[n,i] = sum_j delta[n,j] w[j,i]
    da[n, i] = s


@cuda.jit
def linear_weight_grad_kernel(delta, a, dw):
    n_batch, d = a.shape
    p = dw.shape[0]
    t = cuda.grid(1)
    if t >= p * d:
        return
    i = t % d
    j = t // d
    s = dw.dtype.type(0)
    for n in range(n_batch):
        s += delta[n, j] * a[n, i]                     # dL/dw[j,i] = sum_n delta[n,j] a[n,i]
    dw[j, i] = s


@cuda.jit
def linear_bias_grad_kernel(delta, db):
    n_batch, p = delta.shape
    j = cuda.grid(1)
    if j >= p:
        return
    s = db.dtype.type(0)
    for n in range(n_batch):
        s += delta[n, j]                               # dL/db[j] = sum_n delta[n,j]
    db[j] = s


def linear_forward(x, weight, bias):
    a = _device.checked("linear", "input", x)
    w = _device.checked("linear", "weight", weight)
    b = None if bias is None else _device.checked("linear", "bias", bias)
    z = _device.empty((a.shape[0], w.shape[0]), a.dtype, a)
    _device.launch(linear_forward_kernel, z.numel(), a, w, b, z)
    return z


def linear_backward(grad_z, x, weight, needs):
    """The delta rule of ``scalar_ops.linear.linear_backward``, one thread per gradient element:

        dL/dw[j,i] = sum_n delta[n,j] * a[n,i]      dL/db[j] = sum_n delta[n,j]
        dL/da[n,i] = sum_j delta[n,j] * w[j,i]
    """
    needs_input, needs_weight, needs_bias = needs
    delta = _device.checked("linear", "grad_output", grad_z)
    grad_a = grad_w = grad_b = None
    if needs_input:
        w = _device.checked("linear", "weight", weight)
        grad_a = _device.empty((delta.shape[0], w.shape[1]), delta.dtype, delta)
        _device.launch(linear_input_grad_kernel, grad_a.numel(), delta, w, grad_a)
    if needs_weight:
        a = _device.checked("linear", "input", x)
        grad_w = _device.empty((delta.shape[1], a.shape[1]), delta.dtype, delta)
        _device.launch(linear_weight_grad_kernel, grad_w.numel(), delta, a, grad_w)
    if needs_bias:
        grad_b = _device.empty((delta.shape[1],), delta.dtype, delta)
        _device.launch(linear_bias_grad_kernel, grad_b.numel(), delta, grad_b)
    return grad_a, grad_w, grad_b

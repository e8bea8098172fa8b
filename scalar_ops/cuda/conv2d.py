"""Convolution as CUDA kernels, one thread per output element (seed 000 eq. 1), 0-based:

    z[n, co, m, l] = sum_{ci, i, j} a[n, g*C_in/G + ci, m*s_h + i*d_h - p_h, l*s_w + j*d_w - p_w] * w[co, ci, i, j]
                     + b[co],            g = co // (C_out/G)

the same literal sum as ``scalar_ops.conv2d`` (which see for the index ranges), in the
same order (bias first, then ci, i, j), written by the one thread that owns z[n,co,m,l];
an input position outside the image reads the zero padding and is skipped.

Every gradient is a gather, so no two threads write the same element, nothing needs an
atomic add and the sums come out in a fixed order (deterministic): one thread per
dL/da[n,ci,r,q], per dL/dw[co,ci,i,j] (summing over n and the positions), per dL/db[co].
"""

from numba import cuda

from scalar_ops.cuda import _device
from simple_conv_net.window import Window


@cuda.jit
def conv2d_forward_kernel(a, w, b, z, s_h, s_w, p_h, p_w, d_h, d_w, groups):
    n_batch, c_in, h, w_in = a.shape
    c_out, c_in_g, k_h, k_w = w.shape
    _, _, h_out, w_out = z.shape
    t = cuda.grid(1)
    if t >= n_batch * c_out * h_out * w_out:
        return
    # this thread's output element z[n, co, m, l], t its row-major (memory) index
    l = t % w_out
    m = t // w_out % h_out
    co = t // (w_out * h_out) % c_out
    n = t // (w_out * h_out * c_out)
    first = co // (c_out // groups) * c_in_g                             # the group's first input channel
    s = z.dtype.type(0)
    if b is not None:
        s = b[co]                                                            # + b[co] (eq. 1)
    for ci in range(c_in_g):
        for i in range(k_h):
            r = m * s_h + i * d_h - p_h
            if r < 0 or r >= h:
                continue                                                     # zero padding: adds nothing
            for j in range(k_w):
                q = l * s_w + j * d_w - p_w
                if q < 0 or q >= w_in:
                    continue
                # seed 000 eq. 1: z[n,co,m,l] += a[n,g*C_in/G+ci,m*s+i*d-p,l*s+j*d-p] * w[co,ci,i,j]
                s += a[n, first + ci, r, q] * w[co, ci, i, j]
    z[n, co, m, l] = s


@cuda.jit
def conv2d_weight_grad_kernel(delta, a, dw, s_h, s_w, p_h, p_w, d_h, d_w, groups):
    n_batch, c_in, h, w_in = a.shape
    c_out, c_in_g, k_h, k_w = dw.shape
    _, _, h_out, w_out = delta.shape
    t = cuda.grid(1)
    if t >= c_out * c_in_g * k_h * k_w:
        return
    j = t % k_w
    i = t // k_w % k_h
    ci = t // (k_w * k_h) % c_in_g
    co = t // (k_w * k_h * c_in_g)
    x_ci = co // (c_out // groups) * c_in_g + ci                          # the input channel w[co, ci] reads
    s = dw.dtype.type(0)
    for n in range(n_batch):
        for m in range(h_out):
            r = m * s_h + i * d_h - p_h
            if r < 0 or r >= h:
                continue
            for l in range(w_out):
                q = l * s_w + j * d_w - p_w
                if q < 0 or q >= w_in:
                    continue
                # dL/dw[co,ci,i,j] += delta[n,co,m,l] * a[n,g*C_in/G+ci,m*s+i*d-p,l*s+j*d-p]
                s += delta[n, co, m, l] * a[n, x_ci, r, q]
    dw[co, ci, i, j] = s


@cuda.jit
def conv2d_bias_grad_kernel(delta, db):
    n_batch, c_out, h_out, w_out = delta.shape
    co = cuda.grid(1)
    if co >= c_out:
        return
    s = db.dtype.type(0)
    for n in range(n_batch):
        for m in range(h_out):
            for l in range(w_out):
                s += delta[n, co, m, l]                       # dL/db[co] = sum_{n,m,l} delta[n,co,m,l]
    db[co] = s


@cuda.jit
def conv2d_input_grad_kernel(delta, w, da, s_h, s_w, p_h, p_w, d_h, d_w, groups):
    n_batch, c_in, h, w_in = da.shape
    c_out, c_in_g, k_h, k_w = w.shape
    _, _, h_out, w_out = delta.shape
    t = cuda.grid(1)
    if t >= n_batch * c_in * h * w_in:
        return
    q = t % w_in
    r = t // w_in % h
    ci = t // (w_in * h) % c_in
    n = t // (w_in * h * c_in)
    c_out_g = c_out // groups
    group = ci // c_in_g                                          # the group of input channel ci,
    cg = ci % c_in_g                                              # and its index in the group's filters
    s = da.dtype.type(0)
    for co in range(group * c_out_g, (group + 1) * c_out_g):
        for i in range(k_h):
            # the output rows m with m*s_h + i*d_h - p_h = r: at most one, m = (r + p_h - i*d_h) / s_h
            # when that is a whole number in [0, H_out)
            m_s = r + p_h - i * d_h
            if m_s < 0 or m_s % s_h != 0 or m_s // s_h >= h_out:
                continue
            m = m_s // s_h
            for j in range(k_w):
                l_s = q + p_w - j * d_w
                if l_s < 0 or l_s % s_w != 0 or l_s // s_w >= w_out:
                    continue
                l = l_s // s_w
                # delta[n,co,m,l] goes back along the index map of eq. 1 to the input element
                # it multiplied: da[n,ci,m*s+i*d-p,l*s+j*d-p] += delta[n,co,m,l] * w[co,ci-g*C_in/G,i,j]
                s += delta[n, co, m, l] * w[co, cg, i, j]
    da[n, ci, r, q] = s


def conv2d_forward(x, weight, bias, g: Window):
    a = _device.checked("conv2d", "input", x)
    w = _device.checked("conv2d", "weight", weight)
    b = None if bias is None else _device.checked("conv2d", "bias", bias)
    z = _device.empty(g.output_shape, a.dtype, a)
    _device.launch(conv2d_forward_kernel, z.numel(), a, w, b, z, *g.index_map)
    return z


def conv2d_backward(grad_z, x, weight, g: Window, needs):
    """The delta rule of ``scalar_ops.conv2d.conv2d_backward``, with delta = dL/dz:

        dL/dw[co,ci,i,j] = sum_{n,m,l} delta[n,co,m,l] * a[n,g*C_in/G+ci,m*s_h+i*d_h-p_h, l*s_w+j*d_w-p_w]
        dL/db[co]        = sum_{n,m,l} delta[n,co,m,l]
        dL/da[n,ci,r,q]  = sum_{co,i,j} delta[n,co,m,l] * w[co,ci-g*C_in/G,i,j]
                           over the filters co of ci's group g and the (m, l) with m*s_h+i*d_h-p_h = r
                           and l*s_w+j*d_w-p_w = q

    The CPU loops scatter each delta to the input element it multiplied; here the one
    thread per dL/da[n,ci,r,q] gathers the same terms, in the same (co, i, j) order, by
    solving r = m*s_h+i*d_h-p_h for m (a term exists only when s_h divides r+p_h-i*d_h), and
    one thread per weight (per bias) sums over the batch and the positions.
    """
    needs_input, needs_weight, needs_bias = needs
    delta = _device.checked("conv2d", "grad_output", grad_z)
    grad_x = grad_w = grad_b = None
    if needs_weight:
        a = _device.checked("conv2d", "input", x)
        grad_w = _device.empty(g.weight_shape, delta.dtype, delta)
        _device.launch(conv2d_weight_grad_kernel, grad_w.numel(), delta, a, grad_w, *g.index_map)
    if needs_bias:
        grad_b = _device.empty((g.c_out,), delta.dtype, delta)
        _device.launch(conv2d_bias_grad_kernel, g.c_out, delta, grad_b)
    if needs_input:
        w = _device.checked("conv2d", "weight", weight)
        grad_x = _device.empty(g.input_shape, delta.dtype, delta)
        _device.launch(conv2d_input_grad_kernel, grad_x.numel(), delta, w, grad_x, *g.index_map)
    return grad_x, grad_w, grad_b

"""Max pooling as CUDA kernels, one thread per output element (seed 000 eq. 2, any window,
stride, padding and dilation, ceil_mode's output size), as ``scalar_ops.pool2d`` (which see):

    z[n, c, m, l] = max_{0 <= i < K_h, 0 <= j < K_w} a[n, c, m*s_h + i*d_h - p_h, l*s_w + j*d_w - p_w]
    argmax[n, c, m, l] = h*W + w  of the maximum a[n, c, h, w]

padding counting as -inf (skipped), ties to the FIRST maximum in window order, NaN
propagating (PyTorch's rule ``val > maxval or isnan(val)``).

The backward is a gather: one thread per input element dL/da[n,c,h,w] adds up the deltas
of the windows that chose it, in (m, l) order, so overlapping windows need no atomics and
the result is deterministic.
"""

import math

from numba import cuda

from scalar_ops.cuda import _device
from simple_conv_net.window import Window


@cuda.jit
def max_pool2d_forward_kernel(a, z, argmax, k_h, k_w, s_h, s_w, p_h, p_w, d_h, d_w):
    n_batch, c, h, w = a.shape
    _, _, h_out, w_out = z.shape
    t = cuda.grid(1)
    if t >= n_batch * c * h_out * w_out:
        return
    l = t % w_out
    m = t // w_out % h_out
    ch = t // (w_out * h_out) % c
    n = t // (w_out * h_out * c)
    # the window's taps i from the first inside the input, ceil((p_h - m*s_h) / d_h) or 0 (the ones before read
    # -inf padding); the loop stops at the input's end (written out, no helper: a device function, like the
    # CUDA target's integer max/min, would need a GPU to compile for)
    i_lo = -((m * s_h - p_h) // d_h) if m * s_h < p_h else 0
    j_lo = -((l * s_w - p_w) // d_w) if l * s_w < p_w else 0
    best = a.dtype.type(-math.inf)
    best_index = (m * s_h + i_lo * d_h - p_h) * w + (l * s_w + j_lo * d_w - p_w)
    for i in range(i_lo, k_h):
        r = m * s_h + i * d_h - p_h
        if r >= h:
            break
        for j in range(j_lo, k_w):
            q = l * s_w + j * d_w - p_w
            if q >= w:
                break
            # seed 000 eq. 2: z[n,c,m,l] = max over the window of a[n,c,m*s+i*d-p,l*s+j*d-p]
            value = a[n, ch, r, q]
            if value > best or value != value:                  # strictly greater, or NaN
                best = value
                best_index = r * w + q
    z[n, ch, m, l] = best
    argmax[n, ch, m, l] = best_index


@cuda.jit
def max_pool2d_backward_kernel(delta, argmax, da, k_h, k_w, s_h, s_w, p_h, p_w, d_h, d_w):
    n_batch, c, h, w = da.shape
    _, _, h_out, w_out = delta.shape
    t = cuda.grid(1)
    if t >= n_batch * c * h * w:
        return
    q = t % w
    r = t // w % h
    ch = t // (w * h) % c
    n = t // (w * h * c)
    # the windows whose span holds row r: m*s_h - p_h <= r <= m*s_h - p_h + (K_h - 1)*d_h
    m_first = r + p_h - (k_h - 1) * d_h                          # ceil(m_first / s_h) <= m
    m_lo = 0 if m_first <= 0 else (m_first + s_h - 1) // s_h
    m_hi = (r + p_h) // s_h + 1                                  # m <= floor((r + p_h) / s_h)
    m_hi = m_hi if m_hi < h_out else h_out
    l_first = q + p_w - (k_w - 1) * d_w
    l_lo = 0 if l_first <= 0 else (l_first + s_w - 1) // s_w
    l_hi = (q + p_w) // s_w + 1
    l_hi = l_hi if l_hi < w_out else w_out
    s = da.dtype.type(0)
    for m in range(m_lo, m_hi):
        for l in range(l_lo, l_hi):
            # the window's maximum a[n,c,h,w] is the only input z[n,c,m,l] depends on
            if argmax[n, ch, m, l] == r * w + q:
                s += delta[n, ch, m, l]
    da[n, ch, r, q] = s


def max_pool2d_forward(x, g: Window):
    a = _device.checked("max_pool2d", "input", x)
    z = _device.empty(g.output_shape, a.dtype, a)
    argmax = _device.empty(g.output_shape, _device.INDEX[0], a)
    _device.launch(max_pool2d_forward_kernel, z.numel(), a, z, argmax, g.k_h, g.k_w, g.s_h, g.s_w, g.p_h, g.p_w,
                   g.d_h, g.d_w)
    return z, argmax


def max_pool2d_backward(grad_z, argmax, g: Window):
    """The delta rule of ``scalar_ops.pool2d.max_pool2d_backward``, one thread per input element:

        dL/da[n,c,h,w] = sum over the windows (m, l) whose argmax is (h, w) of delta[n,c,m,l]

    gathered over the windows (m, l) that contain (h, w), in row-major order, the order in
    which the CPU loop adds them.
    """
    delta = _device.checked("max_pool2d", "grad_output", grad_z)
    index = _device.checked("max_pool2d", "argmax", argmax, dtypes=_device.INDEX)
    da = _device.empty(g.input_shape, delta.dtype, delta)
    _device.launch(max_pool2d_backward_kernel, da.numel(), delta, index, da, g.k_h, g.k_w, g.s_h, g.s_w,
                   g.p_h, g.p_w, g.d_h, g.d_w)
    return da

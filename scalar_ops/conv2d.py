"""Convolution as literal loops (seed 000 eq. 1), with stride s and padding p, 0-based:

    z[n, co, m, l] = sum_{ci, i, j} a[n, ci, m*s_h + i - p_h, l*s_w + j - p_w] * w[co, ci, i, j] + b[co]

for 0 <= n < N, 0 <= co < C_out, 0 <= m < H_out, 0 <= l < W_out, 0 <= ci < C_in,
0 <= i < K_h, 0 <= j < K_w; an input position outside the image reads the zero padding.
The terms that read padding are skipped, not multiplied by zero: the same sum for any finite
weight. (For an infinite or NaN weight, 0 * w is NaN in IEEE arithmetic, which native PyTorch
and vector_ops, multiplying the padding, put in the border outputs and these loops do not.)

One multiply-add at a time. The loops are ordered so the innermost one walks a row of
the output or input (contiguous memory) and the terms that would read zero padding are
skipped by the loop bounds (:func:`inside`) rather than tested one by one; ``at(...)``
marks an index those bounds keep >= 0 (see ``scalar_ops._numba.at``), which lets the
compiler vectorise the innermost loop. The batch
and channel loops that own their outputs run in parallel (``prange``): no two threads
ever write the same element.

The weight gradient, a sum over (n, m, l) for each weight, keeps four sums in flight:
four output channels co..co+3 for one (ci, i, j), so each input value loaded serves four
multiply-adds (channels left over when C_out is not a multiple of four go one at a time).
Its innermost loop is only W_out long (24 in SimpleConvNet), so this is what amortises
the loop's start-up and the final add-up of the vector lanes.
"""

import numpy as np

from scalar_ops._dispatch import registered
from scalar_ops._numba import as_array, as_tensor, at, jit, prange
from simple_conv_net.functions import Kernels, Window, conv2d_op


@jit(parallel=False)
def inside(k, s, p, size, size_out):
    """The output positions m (as range bounds lo, hi) whose input index m*s + k - p is in [0, size).

    m*s + k - p >= 0     <=>  m >= ceil((p - k) / s)
    m*s + k - p < size   <=>  m <= floor((size - 1 + p - k) / s)
    Positions outside read padding (zero in a convolution) and add nothing.
    """
    lo = -((k - p) // s)              # ceil((p - k) / s), with Python's floor division
    hi = (size - 1 + p - k) // s + 1
    return max(lo, 0), min(hi, size_out)


@jit(fastmath=True)
def conv2d_forward_loops(a, w, b, z, s_h, s_w, p_h, p_w):
    n_batch, c_in, h, w_in = a.shape
    c_out, _, k_h, k_w = w.shape
    _, _, h_out, w_out = z.shape
    # z[n, co] is written by one thread only: prange over the (n, co) pairs.
    for t in prange(n_batch * c_out):
        n = t // c_out
        co = t % c_out
        bias = z.dtype.type(0)
        if b is not None:
            bias = b[co]
        for m in range(h_out):
            for l in range(w_out):
                z[n, co, m, l] = bias                                        # + b[co] (eq. 1)
        for ci in range(c_in):
            for i in range(k_h):
                m_lo, m_hi = inside(i, s_h, p_h, h, h_out)
                for j in range(k_w):
                    l_lo, l_hi = inside(j, s_w, p_w, w_in, w_out)
                    for m in range(m_lo, m_hi):
                        for l in range(l_lo, l_hi):
                            # seed 000 eq. 1: z[n,co,m,l] += a[n,ci,m*s+i-p,l*s+j-p] * w[co,ci,i,j]
                            z[n, co, m, at(l)] += a[n, ci, at(m * s_h + i - p_h), at(l * s_w + j - p_w)] * w[co, ci, i, j]


@jit(fastmath=True)
def conv2d_weight_grad_loops(delta, a, dw, s_h, s_w, p_h, p_w):
    n_batch, c_in, h, w_in = a.shape
    c_out, _, k_h, k_w = dw.shape
    _, _, h_out, w_out = delta.shape
    c4 = c_out - c_out % 4
    blocks = (c_out + 3) // 4
    # dw[co:co+4, ci, i] is written by one thread only: prange over (block of four output channels,
    # ci, i) triples, never over n (SimpleConvNet has C_in = 1: the kernel rows i give the threads
    # 25 tasks to share instead of 5). The four channels of a block share each input value a[...]
    # loaded: four sums, one multiply-add each per step of l. Channels left over (co >= c4) go one
    # at a time.
    for t in prange(blocks * c_in * k_h):
        co = 4 * (t // (c_in * k_h))
        ci = (t // k_h) % c_in
        i = t % k_h
        m_lo, m_hi = inside(i, s_h, p_h, h, h_out)
        for j in range(k_w):
            l_lo, l_hi = inside(j, s_w, p_w, w_in, w_out)
            if co < c4:
                s0 = dw.dtype.type(0); s1 = dw.dtype.type(0); s2 = dw.dtype.type(0); s3 = dw.dtype.type(0)
                for n in range(n_batch):
                    for m in range(m_lo, m_hi):
                        r = at(m * s_h + i - p_h)
                        for l in range(l_lo, l_hi):
                            x = a[n, ci, r, at(l * s_w + j - p_w)]
                            # dL/dw[co,ci,i,j] += delta[n,co,m,l] * a[n,ci,m*s+i-p,l*s+j-p], for co..co+3
                            s0 += delta[n, co, m, at(l)] * x
                            s1 += delta[n, co + 1, m, at(l)] * x
                            s2 += delta[n, co + 2, m, at(l)] * x
                            s3 += delta[n, co + 3, m, at(l)] * x
                dw[co, ci, i, j] = s0; dw[co + 1, ci, i, j] = s1; dw[co + 2, ci, i, j] = s2; dw[co + 3, ci, i, j] = s3
            else:
                for c in range(co, c_out):
                    s = dw.dtype.type(0)
                    for n in range(n_batch):
                        for m in range(m_lo, m_hi):
                            for l in range(l_lo, l_hi):
                                # dL/dw[co,ci,i,j] += delta[n,co,m,l] * a[n,ci,m*s+i-p,l*s+j-p]
                                s += delta[n, c, m, at(l)] * a[n, ci, at(m * s_h + i - p_h), at(l * s_w + j - p_w)]
                    dw[c, ci, i, j] = s


@jit(fastmath=True)
def conv2d_bias_grad_loops(delta, db):
    n_batch, c_out, h_out, w_out = delta.shape
    for co in prange(c_out):
        s = db.dtype.type(0)
        for n in range(n_batch):
            for m in range(h_out):
                for l in range(w_out):
                    s += delta[n, co, m, l]                   # dL/db[co] = sum_{n,m,l} delta[n,co,m,l]
        db[co] = s


@jit(fastmath=True)
def conv2d_input_grad_loops(delta, w, da, s_h, s_w, p_h, p_w):
    n_batch, c_in, h, w_in = da.shape
    c_out, _, k_h, k_w = w.shape
    _, _, h_out, w_out = delta.shape
    # da[n, ci] is written by one thread only: prange over the (n, ci) pairs.
    for t in prange(n_batch * c_in):
        n = t // c_in
        ci = t % c_in
        for r in range(h):
            for q in range(w_in):
                da[n, ci, r, q] = da.dtype.type(0)
        for co in range(c_out):
            for i in range(k_h):
                m_lo, m_hi = inside(i, s_h, p_h, h, h_out)
                for j in range(k_w):
                    l_lo, l_hi = inside(j, s_w, p_w, w_in, w_out)
                    for m in range(m_lo, m_hi):
                        for l in range(l_lo, l_hi):
                            # delta[n,co,m,l] goes back along the index map of eq. 1 to the input
                            # element it multiplied: da[n,ci,m*s+i-p,l*s+j-p] += delta * w[co,ci,i,j]
                            da[n, ci, at(m * s_h + i - p_h), at(l * s_w + j - p_w)] += delta[n, co, m, at(l)] * w[co, ci, i, j]


def conv2d_forward(x, weight, bias, g: Window):
    a = as_array("conv2d", "input", x)
    w = as_array("conv2d", "weight", weight)
    b = None if bias is None else as_array("conv2d", "bias", bias)
    z = np.empty(g.output_shape, a.dtype)
    conv2d_forward_loops(a, w, b, z, g.s_h, g.s_w, g.p_h, g.p_w)
    return as_tensor(z)


def conv2d_backward(grad_z, x, weight, g: Window, needs):
    """The delta rule for eq. 1, with delta = dL/dz [N, C_out, H_out, W_out].

    z[n,co,m,l] depends on w[co,ci,i,j] through one term, a[n,ci,m*s_h+i-p_h, l*s_w+j-p_w]
    * w[co,ci,i,j], for every (n, m, l), so

        dL/dw[co,ci,i,j] = sum_{n,m,l} delta[n,co,m,l] * a[n,ci,m*s_h+i-p_h, l*s_w+j-p_w]
        dL/db[co]        = sum_{n,m,l} delta[n,co,m,l]

    (terms whose input index falls in the padding are zero and skipped). The input
    element a[n,ci,r,q] enters z[n,co,m,l] with weight w[co,ci,i,j] wherever
    r = m*s_h+i-p_h and q = l*s_w+j-p_w, so each delta is sent back along that same index
    map and the contributions add up:

        dL/da[n,ci,m*s_h+i-p_h, l*s_w+j-p_w] += delta[n,co,m,l] * w[co,ci,i,j]
                                                  for all co, i, j, m, l.
    """
    needs_input, needs_weight, needs_bias = needs
    delta = as_array("conv2d", "grad_output", grad_z)
    grad_x = grad_w = grad_b = None
    if needs_weight:
        a = as_array("conv2d", "input", x)
        dw = np.empty((g.c_out, g.c_in, g.k_h, g.k_w), delta.dtype)
        conv2d_weight_grad_loops(delta, a, dw, g.s_h, g.s_w, g.p_h, g.p_w)
        grad_w = as_tensor(dw)
    if needs_bias:
        db = np.empty(g.c_out, delta.dtype)
        conv2d_bias_grad_loops(delta, db)
        grad_b = as_tensor(db)
    if needs_input:
        w = as_array("conv2d", "weight", weight)
        da = np.empty(g.input_shape, delta.dtype)
        conv2d_input_grad_loops(delta, w, da, g.s_h, g.s_w, g.p_h, g.p_w)
        grad_x = as_tensor(da)
    return grad_x, grad_w, grad_b


conv2d = conv2d_op(registered(Kernels(conv2d_forward, conv2d_backward)))

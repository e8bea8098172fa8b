"""Convolution as literal loops (seed 000 eq. 1), with stride s, padding p, dilation d and G groups, 0-based:

    z[n, co, m, l] = sum_{ci, i, j} a[n, g*C_in/G + ci, m*s_h + i*d_h - p_h, l*s_w + j*d_w - p_w] * w[co, ci, i, j]
                     + b[co],            g = co // (C_out/G), the group of output channel co

for 0 <= n < N, 0 <= co < C_out, 0 <= m < H_out, 0 <= l < W_out, 0 <= ci < C_in/G,
0 <= i < K_h, 0 <= j < K_w; an input position outside the image reads the zero padding.
(G = 1, d = 1: the homework's eq. 1 with stride and padding.)
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

The fast path (``*_rows`` below; the glue picks it for stride 1, no padding, no dilation, one
group and kernel rows of five taps, as in every model here, and the literal loops for everything else)
computes the same sums in another order, three changes that together make it 3-9 times
faster on LeNet's 20 -> 50 channel conv:

* wide rows: output (m, l) is computed at q = m*W + l, its input's row-major position, so
  kernel offset (i, j) reads x[q + i*W + j] - one contiguous run over q for the whole
  plane instead of H_out runs of W_out (8 in LeNet's second conv). The W - W_out positions
  at the end of each row (l >= W_out) read across into the next row; the forward drops
  them, the backward passes give them a zero delta (0 * x is 0 only for a finite x, so
  the glue takes the backward fast paths for a finite input and finite weights only);
* four channels per pass: each value loaded serves four filters (the weights are padded
  with zero filters to a multiple of four, so there is no left-over loop);
* the five taps j of a kernel row are summed before the accumulator in memory is touched.
"""

import numpy as np

from scalar_ops._dispatch import registered
from scalar_ops._numba import as_array, as_tensor, at, jit, prange
from simple_conv_net.functions import Kernels, conv2d_op
from simple_conv_net.window import Window

# The fast path's shape: kernel rows of TAPS taps, channels in blocks of BLOCK (see the module doc).
TAPS = 5
BLOCK = 4
# The weight gradient's fast path sums over the batch in chunks: one task reads at most this many bytes of each.
CHUNK_BYTES = 2**19
# Values in a vector register (8 float32 in AVX2's 256 bits): the weight gradient's wide rows are padded to a multiple.
LANES = 8


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
def conv2d_forward_loops(a, w, b, z, s_h, s_w, p_h, p_w, d_h, d_w, groups):
    n_batch, c_in, h, w_in = a.shape
    c_out, c_in_g, k_h, k_w = w.shape
    _, _, h_out, w_out = z.shape
    c_out_g = c_out // groups
    # z[n, co] is written by one thread only: prange over the (n, co) pairs.
    for t in prange(n_batch * c_out):
        n = t // c_out
        co = t % c_out
        first = co // c_out_g * c_in_g                                       # the group's first input channel
        bias = z.dtype.type(0)
        if b is not None:
            bias = b[co]
        for m in range(h_out):
            for l in range(w_out):
                z[n, co, m, l] = bias                                        # + b[co] (eq. 1)
        for ci in range(c_in_g):
            for i in range(k_h):
                m_lo, m_hi = inside(i * d_h, s_h, p_h, h, h_out)
                for j in range(k_w):
                    l_lo, l_hi = inside(j * d_w, s_w, p_w, w_in, w_out)
                    for m in range(m_lo, m_hi):
                        for l in range(l_lo, l_hi):
                            # seed 000 eq. 1: z[n,co,m,l] += a[n,g*C_in/G+ci,m*s+i*d-p,l*s+j*d-p] * w[co,ci,i,j]
                            z[n, co, m, at(l)] += (a[n, first + ci, at(m * s_h + i * d_h - p_h),
                                                     at(l * s_w + j * d_w - p_w)] * w[co, ci, i, j])


@jit(fastmath=True)
def conv2d_weight_grad_loops(delta, a, dw, s_h, s_w, p_h, p_w, d_h, d_w, groups):
    n_batch, c_in, h, w_in = a.shape
    c_out, c_in_g, k_h, k_w = dw.shape
    _, _, h_out, w_out = delta.shape
    c_out_g = c_out // groups
    blocks = (c_out_g + 3) // 4                      # blocks of four filters within a group
    # dw[co:co+4, ci, i] is written by one thread only: prange over (group, block of four of its filters,
    # ci, i), never over n (SimpleConvNet has C_in = 1: the kernel rows i give the threads 25 tasks to share
    # instead of 5). The four filters of a block share each input value a[...] loaded: four sums, one
    # multiply-add each per step of l. Filters left over at a group's end go one at a time.
    for t in prange(groups * blocks * c_in_g * k_h):
        i = t % k_h
        ci = t // k_h % c_in_g
        block = t // (k_h * c_in_g)
        group = block // blocks
        co = group * c_out_g + 4 * (block % blocks)
        last = (group + 1) * c_out_g                 # the group's filters end here
        x_ci = group * c_in_g + ci                   # the input channel weight [., ci] reads
        m_lo, m_hi = inside(i * d_h, s_h, p_h, h, h_out)
        for j in range(k_w):
            l_lo, l_hi = inside(j * d_w, s_w, p_w, w_in, w_out)
            if co + 4 <= last:
                s0 = dw.dtype.type(0); s1 = dw.dtype.type(0); s2 = dw.dtype.type(0); s3 = dw.dtype.type(0)
                for n in range(n_batch):
                    for m in range(m_lo, m_hi):
                        r = at(m * s_h + i * d_h - p_h)
                        for l in range(l_lo, l_hi):
                            x = a[n, x_ci, r, at(l * s_w + j * d_w - p_w)]
                            # dL/dw[co,ci,i,j] += delta[n,co,m,l] * a[n,g*C_in/G+ci,m*s+i*d-p,l*s+j*d-p], co..co+3
                            s0 += delta[n, co, m, at(l)] * x
                            s1 += delta[n, co + 1, m, at(l)] * x
                            s2 += delta[n, co + 2, m, at(l)] * x
                            s3 += delta[n, co + 3, m, at(l)] * x
                dw[co, ci, i, j] = s0; dw[co + 1, ci, i, j] = s1; dw[co + 2, ci, i, j] = s2; dw[co + 3, ci, i, j] = s3
            else:
                for c in range(co, last):
                    s = dw.dtype.type(0)
                    for n in range(n_batch):
                        for m in range(m_lo, m_hi):
                            for l in range(l_lo, l_hi):
                                # dL/dw[co,ci,i,j] += delta[n,co,m,l] * a[n,g*C_in/G+ci,m*s+i*d-p,l*s+j*d-p]
                                s += delta[n, c, m, at(l)] * a[n, x_ci, at(m * s_h + i * d_h - p_h),
                                                               at(l * s_w + j * d_w - p_w)]
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
def conv2d_input_grad_loops(delta, w, da, s_h, s_w, p_h, p_w, d_h, d_w, groups):
    n_batch, c_in, h, w_in = da.shape
    c_out, c_in_g, k_h, k_w = w.shape
    _, _, h_out, w_out = delta.shape
    c_out_g = c_out // groups
    # da[n, ci] is written by one thread only: prange over the (n, ci) pairs.
    for t in prange(n_batch * c_in):
        n = t // c_in
        ci = t % c_in
        group = ci // c_in_g                                      # the group of input channel ci,
        cg = ci % c_in_g                                          # and its index in the group's filters
        for r in range(h):
            for q in range(w_in):
                da[n, ci, r, q] = da.dtype.type(0)
        for co in range(group * c_out_g, (group + 1) * c_out_g):
            for i in range(k_h):
                m_lo, m_hi = inside(i * d_h, s_h, p_h, h, h_out)
                for j in range(k_w):
                    l_lo, l_hi = inside(j * d_w, s_w, p_w, w_in, w_out)
                    for m in range(m_lo, m_hi):
                        for l in range(l_lo, l_hi):
                            # delta[n,co,m,l] goes back along the index map of eq. 1 to the input
                            # element it multiplied: da[n,ci,m*s+i*d-p,l*s+j*d-p] += delta * w[co,ci-g*C_in/G,i,j]
                            da[n, ci, at(m * s_h + i * d_h - p_h), at(l * s_w + j * d_w - p_w)] += (
                                delta[n, co, m, at(l)] * w[co, cg, i, j])


# ----------------------------------------------------------------------------- the fast path


def rows_fit(g: Window) -> bool:
    """Whether the ``*_rows`` kernels apply: stride 1, no padding, no dilation, one group, kernel rows of TAPS taps."""
    return (g.s_h, g.s_w, g.p_h, g.p_w, g.k_w) == (1, 1, 0, 0, TAPS) and g.plain


@jit(parallel=False)
def all_finite(x):
    """Whether every element of ``x`` is finite (x - x is 0 for a finite x, NaN for inf and NaN)."""
    for v in x.reshape(-1):
        if v - v != 0:
            return False
    return True


@jit(parallel=False)
def channel_padded(w, axis):
    """w [C_out, C_in, K_h, K_w] with zero filters appended along ``axis`` (0: C_out, 1: C_in) up to a
    multiple of BLOCK."""
    c_out, c_in, k_h, k_w = w.shape
    if axis == 0:
        padded = np.zeros(((c_out + BLOCK - 1) // BLOCK * BLOCK, c_in, k_h, k_w), w.dtype)
    else:
        padded = np.zeros((c_out, (c_in + BLOCK - 1) // BLOCK * BLOCK, k_h, k_w), w.dtype)
    padded[:c_out, :c_in] = w
    return padded


@jit
def widened(delta, width, lead, length, channels):
    """delta [N, C, H_out, W_out] on the wide rows: [N, channels, length] with delta[n, c, m, l] at
    lead + m*width + l and zero everywhere else (the dropped positions, the channels c >= C)."""
    n_batch, c, h_out, w_out = delta.shape
    out = np.zeros((n_batch, channels, length), delta.dtype)
    for t in prange(n_batch * c):
        n = t // c
        ch = t % c
        for m in range(h_out):
            for l in range(w_out):
                out[n, ch, at(lead + m * width + l)] = delta[n, ch, m, l]
    return out


@jit(fastmath=True)
def conv2d_forward_rows(a, w, b, z, s_h, s_w, p_h, p_w):
    """Eq. 1 on the wide rows, four filters per pass, a kernel row's five taps at once (module doc).

    acc[r, q] = sum_{ci, i, j} f[co+r, ci, i, j] * x[n, ci, q + i*W + j],  q = m*W + l
    z[n, co+r, m, l] = acc[r, m*W + l] + b[co+r]   for l < W_out (the other q are dropped)
    """
    n_batch, c_in, h, width = a.shape
    _, _, k_h, _ = w.shape
    _, c_out, h_out, w_out = z.shape
    span = (h_out - 1) * width + w_out                 # wide positions q = m*W + l up to the last output
    x = a.reshape(n_batch, c_in, h * width)
    f = channel_padded(w, 0)                           # [C_out rounded up to BLOCK, C_in, K_h, 5]
    blocks = f.shape[0] // BLOCK
    # z[n, co:co+4] is written by one thread only: prange over (n, block of four filters).
    for t in prange(n_batch * blocks):
        n = t // blocks
        co = BLOCK * (t % blocks)
        acc = np.zeros((BLOCK, span), z.dtype)
        for ci in range(c_in):
            for i in range(k_h):
                row = i * width
                f00 = f[co, ci, i, 0]; f01 = f[co, ci, i, 1]; f02 = f[co, ci, i, 2]; f03 = f[co, ci, i, 3]; f04 = f[co, ci, i, 4]
                f10 = f[co + 1, ci, i, 0]; f11 = f[co + 1, ci, i, 1]; f12 = f[co + 1, ci, i, 2]; f13 = f[co + 1, ci, i, 3]; f14 = f[co + 1, ci, i, 4]
                f20 = f[co + 2, ci, i, 0]; f21 = f[co + 2, ci, i, 1]; f22 = f[co + 2, ci, i, 2]; f23 = f[co + 2, ci, i, 3]; f24 = f[co + 2, ci, i, 4]
                f30 = f[co + 3, ci, i, 0]; f31 = f[co + 3, ci, i, 1]; f32 = f[co + 3, ci, i, 2]; f33 = f[co + 3, ci, i, 3]; f34 = f[co + 3, ci, i, 4]
                for q in range(span):
                    x0 = x[n, ci, at(row + q)]; x1 = x[n, ci, at(row + q + 1)]; x2 = x[n, ci, at(row + q + 2)]
                    x3 = x[n, ci, at(row + q + 3)]; x4 = x[n, ci, at(row + q + 4)]
                    # eq. 1: z[n,co,m,l] += sum_j a[n,ci,m+i,l+j] * w[co,ci,i,j], filters co..co+3
                    acc[0, at(q)] += f00 * x0 + f01 * x1 + f02 * x2 + f03 * x3 + f04 * x4
                    acc[1, at(q)] += f10 * x0 + f11 * x1 + f12 * x2 + f13 * x3 + f14 * x4
                    acc[2, at(q)] += f20 * x0 + f21 * x1 + f22 * x2 + f23 * x3 + f24 * x4
                    acc[3, at(q)] += f30 * x0 + f31 * x1 + f32 * x2 + f33 * x3 + f34 * x4
        for r in range(min(BLOCK, c_out - co)):
            bias = z.dtype.type(0)
            if b is not None:
                bias = b[co + r]
            for m in range(h_out):
                for l in range(w_out):
                    z[n, co + r, m, l] = acc[r, m * width + l] + bias       # + b[co] (eq. 1)


@jit(parallel=False)
def samples_per_chunk(plane, span, itemsize):
    """How many samples the weight gradient's fast path takes at a time: as many as keep what one
    task reads of them, an input plane (plane values) and BLOCK wide delta rows (span values each),
    within CHUNK_BYTES (at least one sample)."""
    return max(1, CHUNK_BYTES // (itemsize * (plane + BLOCK * span)))


@jit(fastmath=True)
def conv2d_weight_grad_rows(delta, a, dw, s_h, s_w, p_h, p_w):
    """dL/dw on the wide rows: twenty sums at once, four filters by a kernel row's five taps.

    dL/dw[co,ci,i,j] = sum_{n, q} d[n, co, q] * x[n, ci, q + i*W + j], with d = delta on the wide
    rows, zero at the dropped positions; so those add 0 * x, which is 0 only for a finite x: the
    glue takes this path for a finite input only.

    The sum over n is split into chunks of samples (:func:`samples_per_chunk`: small enough to stay
    in a core's cache while the tasks (filter block, ci, i) of that chunk read them, where the whole
    batch would be read from memory once per task); each chunk's partial sums are kept apart and
    added up at the end in chunk order, the same order for any number of threads. ``at(n)``: n >= 0.
    """
    n_batch, c_in, h, width = a.shape
    c_out, _, k_h, _ = dw.shape
    h_out, w_out = delta.shape[2], delta.shape[3]
    span = (h_out - 1) * width + w_out
    plane = h * width
    x = a.reshape(-1)                                  # x[(n*C_in + ci)*plane + p] = a[n, ci, p // W, p % W]
    blocks = (c_out + BLOCK - 1) // BLOCK
    lanes = (span + LANES - 1) // LANES * LANES        # span rounded up to whole vectors
    d = widened(delta, width, 0, lanes, blocks * BLOCK)  # [N, C_out rounded up to BLOCK, lanes]
    most = samples_per_chunk(plane, lanes, a.itemsize)
    chunks = (n_batch + most - 1) // most
    per_chunk = (n_batch + chunks - 1) // chunks       # chunks of equal size (the last may be smaller)
    tasks = blocks * c_in * k_h
    sums = np.empty((chunks, blocks * BLOCK, c_in, k_h, TAPS), dw.dtype)
    # sums[chunk, co:co+4, ci, i] is written by one thread only: prange over (chunk of samples, block of
    # four filters, ci, i), the chunk outermost so that a thread's tasks share their samples.
    for t in prange(chunks * tasks):
        chunk = t // tasks
        co = BLOCK * ((t % tasks) // (c_in * k_h))
        ci = (t // k_h) % c_in
        i = t % k_h
        row = i * width
        zero = dw.dtype.type(0)
        s00 = zero; s01 = zero; s02 = zero; s03 = zero; s04 = zero
        s10 = zero; s11 = zero; s12 = zero; s13 = zero; s14 = zero
        s20 = zero; s21 = zero; s22 = zero; s23 = zero; s24 = zero
        s30 = zero; s31 = zero; s32 = zero; s33 = zero; s34 = zero
        for n in range(chunk * per_chunk, min(n_batch, (chunk + 1) * per_chunk)):
            start = (n * c_in + ci) * plane + row          # x[start + q + j] = a[n, ci, m + i, l + j]
            # the positions q >= span read on into the next plane (d is zero there), except in the last
            for q in range(min(lanes, x.size - (TAPS - 1) - start)):
                x0 = x[at(start + q)]; x1 = x[at(start + q + 1)]; x2 = x[at(start + q + 2)]
                x3 = x[at(start + q + 3)]; x4 = x[at(start + q + 4)]
                d0 = d[at(n), co, q]; d1 = d[at(n), co + 1, q]; d2 = d[at(n), co + 2, q]; d3 = d[at(n), co + 3, q]
                # dL/dw[co,ci,i,j] += delta[n,co,m,l] * a[n,ci,m+i,l+j], filters co..co+3, taps j = 0..4
                s00 += d0 * x0; s01 += d0 * x1; s02 += d0 * x2; s03 += d0 * x3; s04 += d0 * x4
                s10 += d1 * x0; s11 += d1 * x1; s12 += d1 * x2; s13 += d1 * x3; s14 += d1 * x4
                s20 += d2 * x0; s21 += d2 * x1; s22 += d2 * x2; s23 += d2 * x3; s24 += d2 * x4
                s30 += d3 * x0; s31 += d3 * x1; s32 += d3 * x2; s33 += d3 * x3; s34 += d3 * x4
        sums[chunk, co, ci, i, 0] = s00; sums[chunk, co, ci, i, 1] = s01; sums[chunk, co, ci, i, 2] = s02; sums[chunk, co, ci, i, 3] = s03; sums[chunk, co, ci, i, 4] = s04
        sums[chunk, co + 1, ci, i, 0] = s10; sums[chunk, co + 1, ci, i, 1] = s11; sums[chunk, co + 1, ci, i, 2] = s12; sums[chunk, co + 1, ci, i, 3] = s13; sums[chunk, co + 1, ci, i, 4] = s14
        sums[chunk, co + 2, ci, i, 0] = s20; sums[chunk, co + 2, ci, i, 1] = s21; sums[chunk, co + 2, ci, i, 2] = s22; sums[chunk, co + 2, ci, i, 3] = s23; sums[chunk, co + 2, ci, i, 4] = s24
        sums[chunk, co + 3, ci, i, 0] = s30; sums[chunk, co + 3, ci, i, 1] = s31; sums[chunk, co + 3, ci, i, 2] = s32; sums[chunk, co + 3, ci, i, 3] = s33; sums[chunk, co + 3, ci, i, 4] = s34
    # dL/dw[co,ci,i,j] = the chunks' partial sums over n, added in chunk order
    dw[:] = sums[0, :c_out]
    for chunk in range(1, chunks):
        dw += sums[chunk, :c_out]


@jit(fastmath=True)
def conv2d_input_grad_rows(delta, w, da, s_h, s_w, p_h, p_w):
    """dL/da on the wide rows: four input channels per pass, a kernel row's five taps at once.

    Input position p = r*W + c gathers delta[n, co, r - i, c - j] * w[co, ci, i, j] (the index map
    of eq. 1 read backwards). With d = delta on the wide rows, four zeros in front (c - j reaches
    back four places) and zeros at the dropped positions, kernel row i sends d[s - j] to
    p = i*W + s for every s; the zeros add 0 * w, which is 0 only for a finite w: the glue takes
    this path for finite weights only.
    """
    n_batch, c_in, h, width = da.shape
    c_out, _, k_h, _ = w.shape
    h_out, w_out = delta.shape[2], delta.shape[3]
    span = (h_out - 1) * width + w_out
    d = widened(delta, width, TAPS - 1, span + 2 * (TAPS - 1), c_out)
    f = channel_padded(w, 1)                           # [C_out, C_in rounded up to BLOCK, K_h, 5]
    blocks = f.shape[1] // BLOCK
    # da[n, ci:ci+4] is written by one thread only: prange over (n, block of four input channels).
    for t in prange(n_batch * blocks):
        n = t // blocks
        ci = BLOCK * (t % blocks)
        acc = np.zeros((BLOCK, h * width), da.dtype)
        for co in range(c_out):
            for i in range(k_h):
                row = i * width
                f00 = f[co, ci, i, 0]; f01 = f[co, ci, i, 1]; f02 = f[co, ci, i, 2]; f03 = f[co, ci, i, 3]; f04 = f[co, ci, i, 4]
                f10 = f[co, ci + 1, i, 0]; f11 = f[co, ci + 1, i, 1]; f12 = f[co, ci + 1, i, 2]; f13 = f[co, ci + 1, i, 3]; f14 = f[co, ci + 1, i, 4]
                f20 = f[co, ci + 2, i, 0]; f21 = f[co, ci + 2, i, 1]; f22 = f[co, ci + 2, i, 2]; f23 = f[co, ci + 2, i, 3]; f24 = f[co, ci + 2, i, 4]
                f30 = f[co, ci + 3, i, 0]; f31 = f[co, ci + 3, i, 1]; f32 = f[co, ci + 3, i, 2]; f33 = f[co, ci + 3, i, 3]; f34 = f[co, ci + 3, i, 4]
                for s in range(span + TAPS - 1):
                    # d[n, co, s + 4 - j] is delta's wide position s - j
                    e0 = d[n, co, at(s + 4)]; e1 = d[n, co, at(s + 3)]; e2 = d[n, co, at(s + 2)]
                    e3 = d[n, co, at(s + 1)]; e4 = d[n, co, at(s)]
                    # dL/da[n,ci,m+i,l+j] += delta[n,co,m,l] * w[co,ci,i,j], input channels ci..ci+3, taps j = 0..4
                    acc[0, at(row + s)] += f00 * e0 + f01 * e1 + f02 * e2 + f03 * e3 + f04 * e4
                    acc[1, at(row + s)] += f10 * e0 + f11 * e1 + f12 * e2 + f13 * e3 + f14 * e4
                    acc[2, at(row + s)] += f20 * e0 + f21 * e1 + f22 * e2 + f23 * e3 + f24 * e4
                    acc[3, at(row + s)] += f30 * e0 + f31 * e1 + f32 * e2 + f33 * e3 + f34 * e4
        for r in range(min(BLOCK, c_in - ci)):
            for p in range(h):
                for c in range(width):
                    da[n, ci + r, p, c] = acc[r, p * width + c]


def conv2d_forward(x, weight, bias, g: Window):
    a = as_array("conv2d", "input", x)
    w = as_array("conv2d", "weight", weight)
    b = None if bias is None else as_array("conv2d", "bias", bias)
    z = np.empty(g.output_shape, a.dtype)
    if rows_fit(g):
        conv2d_forward_rows(a, w, b, z, g.s_h, g.s_w, g.p_h, g.p_w)
    else:
        conv2d_forward_loops(a, w, b, z, *g.index_map)
    return as_tensor(z)


def conv2d_backward(grad_z, x, weight, g: Window, needs):
    """The delta rule for eq. 1, with delta = dL/dz [N, C_out, H_out, W_out].

    z[n,co,m,l] depends on w[co,ci,i,j] through one term, a[n,g*C_in/G+ci,m*s_h+i*d_h-p_h, l*s_w+j*d_w-p_w]
    * w[co,ci,i,j] (g = co // (C_out/G)), for every (n, m, l), so

        dL/dw[co,ci,i,j] = sum_{n,m,l} delta[n,co,m,l] * a[n,g*C_in/G+ci,m*s_h+i*d_h-p_h, l*s_w+j*d_w-p_w]
        dL/db[co]        = sum_{n,m,l} delta[n,co,m,l]

    (terms whose input index falls in the padding are zero and skipped). The input
    element a[n,ci,r,q] enters z[n,co,m,l], for the filters co of its group, with weight
    w[co,ci-g*C_in/G,i,j] wherever r = m*s_h+i*d_h-p_h and q = l*s_w+j*d_w-p_w, so each delta is
    sent back along that same index map and the contributions add up:

        dL/da[n,ci,m*s_h+i*d_h-p_h, l*s_w+j*d_w-p_w] += delta[n,co,m,l] * w[co,ci-g*C_in/G,i,j]
                                                          for all co of ci's group, i, j, m, l.
    """
    needs_input, needs_weight, needs_bias = needs
    delta = as_array("conv2d", "grad_output", grad_z)
    grad_x = grad_w = grad_b = None
    if needs_weight:
        a = as_array("conv2d", "input", x)
        dw = np.empty(g.weight_shape, delta.dtype)
        if rows_fit(g) and all_finite(a):
            conv2d_weight_grad_rows(delta, a, dw, g.s_h, g.s_w, g.p_h, g.p_w)
        else:
            conv2d_weight_grad_loops(delta, a, dw, *g.index_map)
        grad_w = as_tensor(dw)
    if needs_bias:
        db = np.empty(g.c_out, delta.dtype)
        conv2d_bias_grad_loops(delta, db)
        grad_b = as_tensor(db)
    if needs_input:
        w = as_array("conv2d", "weight", weight)
        da = np.empty(g.input_shape, delta.dtype)
        # (one input channel would fill a block of four with three of zeros: the literal loops are as fast)
        if rows_fit(g) and g.c_in > 1 and all_finite(w):
            conv2d_input_grad_rows(delta, w, da, g.s_h, g.s_w, g.p_h, g.p_w)
        else:
            conv2d_input_grad_loops(delta, w, da, *g.index_map)
        grad_x = as_tensor(da)
    return grad_x, grad_w, grad_b


conv2d = conv2d_op(registered(Kernels(conv2d_forward, conv2d_backward)))

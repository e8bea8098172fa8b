"""Fully connected layer as literal loops (seed 000 eq. 5), 0-based:

    z[n, j] = sum_{i} w[j, i] * a[n, i] + b[j]      a [N, D], w [P, D], b [P] -> z [N, P]

One multiply-add at a time; the innermost loop always walks i, along rows of w, a, da
or dw (contiguous memory), so the compiler turns it into vector instructions.

Register blocking: each kernel's main loop body handles a block of four samples n by
four output features j, written out term by term (16 multiply-adds per step of i), so
every weight loaded from memory serves four samples and every input (or delta) serves
four features. The samples and features left over when N or P is not a multiple of
four (n >= N4 or j >= P4 below) go through the plain one-term loop, one at a time.
The sums are the same; only the order of their terms changes (see ``FASTMATH``).

Threads (``prange``) only ever split indices that own their outputs: the forward and the
weight gradient split the blocks of four features j (z[:, j] and dw[j] belong to one
thread; the sum over n in dw runs inside the thread), the input gradient splits the
columns i of da into strips of equal width, at most ``TILE`` (800 columns: four strips of 200, so
two threads get 400 each, where strips of 256 gave them 512 and 288).
"""

import numpy as np

from scalar_ops._dispatch import registered
from scalar_ops._numba import as_array, as_tensor, at, jit, prange
from simple_conv_net.functions import Kernels, linear_op

# Columns i of da that one thread owns in linear_input_grad_loops: a [P, TILE] strip of w
# (500 x 256 float32 = 512 KiB for fc1) stays in the L2 cache while every sample block reuses it.
TILE = 256
# Values of a per tile of samples in the forward and weight-gradient loops (1 MiB of float32).
TILE_ENTRIES = 2**18


@jit(parallel=False)
def sample_tile(n_batch, d):
    """Samples per tile of the forward and weight-gradient loops: a multiple of four whose rows of a
    (tile x D) hold at most TILE_ENTRIES values (at least four)."""
    return max(4, TILE_ENTRIES // d // 4 * 4)


@jit(fastmath=True)
def linear_forward_loops(a, w, b, z):
    n_batch, d = a.shape
    p = w.shape[0]
    p4 = p - p % 4
    zero = z.dtype.type(0)
    tile = sample_tile(n_batch, d)
    # A tile of samples at a time, so that its rows of a stay in the L2 cache while every block of
    # features reads them (without tiles, a batch of 256 x 2880 re-read a from main memory per block).
    for n_lo in range(0, n_batch, tile):
        n_hi = min(n_lo + tile, n_batch)
        n4 = n_hi - (n_hi - n_lo) % 4
        # z[:, j] is written by one thread only: prange over blocks of four output features j.
        for jb in prange((p + 3) // 4):
            j = 4 * jb
            if j < p4:
                for n in range(n_lo, n4, 4):
                    # z[n+r, j+c] for r, c in 0..3: sixteen float accumulators of z's dtype
                    s00 = zero; s01 = zero; s02 = zero; s03 = zero
                    s10 = zero; s11 = zero; s12 = zero; s13 = zero
                    s20 = zero; s21 = zero; s22 = zero; s23 = zero
                    s30 = zero; s31 = zero; s32 = zero; s33 = zero
                    for i in range(d):
                        w0 = w[j, i]; w1 = w[j + 1, i]; w2 = w[j + 2, i]; w3 = w[j + 3, i]
                        a0 = a[n, i]; a1 = a[n + 1, i]; a2 = a[n + 2, i]; a3 = a[n + 3, i]
                        # seed 000 eq. 5: z[n,j] = sum_i w[j,i] a[n,i], one term per line per sum
                        s00 += w0 * a0; s01 += w1 * a0; s02 += w2 * a0; s03 += w3 * a0
                        s10 += w0 * a1; s11 += w1 * a1; s12 += w2 * a1; s13 += w3 * a1
                        s20 += w0 * a2; s21 += w1 * a2; s22 += w2 * a2; s23 += w3 * a2
                        s30 += w0 * a3; s31 += w1 * a3; s32 += w2 * a3; s33 += w3 * a3
                    z[n, j] = s00; z[n, j + 1] = s01; z[n, j + 2] = s02; z[n, j + 3] = s03
                    z[n + 1, j] = s10; z[n + 1, j + 1] = s11; z[n + 1, j + 2] = s12; z[n + 1, j + 3] = s13
                    z[n + 2, j] = s20; z[n + 2, j + 1] = s21; z[n + 2, j + 2] = s22; z[n + 2, j + 3] = s23
                    z[n + 3, j] = s30; z[n + 3, j + 1] = s31; z[n + 3, j + 2] = s32; z[n + 3, j + 3] = s33
            for jj in range(j, min(j + 4, p)):
                for n in range(n4 if jj < p4 else n_lo, n_hi):     # the leftovers, one at a time
                    s = zero
                    for i in range(d):
                        s += w[jj, i] * a[n, i]                    # seed 000 eq. 5: z[n,j] = sum_i w[j,i] a[n,i]
                    z[n, jj] = s
            if b is not None:
                for jj in range(j, min(j + 4, p)):
                    for n in range(n_lo, n_hi):
                        z[n, jj] += b[jj]                          #                         + b[j]


@jit(fastmath=True)
def linear_input_grad_loops(delta, w, da):
    n_batch, d = da.shape
    p = w.shape[0]
    n4 = n_batch - n_batch % 4
    p4 = p - p % 4
    strips = (d + TILE - 1) // TILE
    width = (d + strips - 1) // strips                     # strips of equal width, at most TILE
    # da[:, i0:i1] is written by one thread only: prange over strips of columns i.
    for ib in prange(strips):
        i0 = ib * width
        i1 = min(i0 + width, d)
        for n in range(n_batch):
            for i in range(i0, i1):
                da[n, at(i)] = da.dtype.type(0)
        for n in range(0, n4, 4):
            for j in range(0, p4, 4):
                d00 = delta[n, j]; d01 = delta[n, j + 1]; d02 = delta[n, j + 2]; d03 = delta[n, j + 3]
                d10 = delta[n + 1, j]; d11 = delta[n + 1, j + 1]; d12 = delta[n + 1, j + 2]; d13 = delta[n + 1, j + 3]
                d20 = delta[n + 2, j]; d21 = delta[n + 2, j + 1]; d22 = delta[n + 2, j + 2]; d23 = delta[n + 2, j + 3]
                d30 = delta[n + 3, j]; d31 = delta[n + 3, j + 1]; d32 = delta[n + 3, j + 2]; d33 = delta[n + 3, j + 3]
                for i in range(i0, i1):
                    w0 = w[j, at(i)]; w1 = w[j + 1, at(i)]; w2 = w[j + 2, at(i)]; w3 = w[j + 3, at(i)]
                    s0 = da[n, at(i)]; s1 = da[n + 1, at(i)]; s2 = da[n + 2, at(i)]; s3 = da[n + 3, at(i)]
                    # dL/da[n,i] = sum_j delta[n,j] w[j,i], four terms j..j+3 for each of four samples
                    s0 += d00 * w0; s0 += d01 * w1; s0 += d02 * w2; s0 += d03 * w3
                    s1 += d10 * w0; s1 += d11 * w1; s1 += d12 * w2; s1 += d13 * w3
                    s2 += d20 * w0; s2 += d21 * w1; s2 += d22 * w2; s2 += d23 * w3
                    s3 += d30 * w0; s3 += d31 * w1; s3 += d32 * w2; s3 += d33 * w3
                    da[n, at(i)] = s0; da[n + 1, at(i)] = s1; da[n + 2, at(i)] = s2; da[n + 3, at(i)] = s3
        for n in range(n_batch):
            for j in range(p4 if n < n4 else 0, p):            # the leftovers, one at a time
                for i in range(i0, i1):
                    da[n, at(i)] += delta[n, j] * w[j, at(i)]  # dL/da[n,i] = sum_j delta[n,j] w[j,i]


@jit(fastmath=True)
def linear_weight_grad_loops(delta, a, dw):
    n_batch, d = a.shape
    p = dw.shape[0]
    p4 = p - p % 4
    for jj in prange(p):
        for i in range(d):
            dw[jj, i] = dw.dtype.type(0)
    tile = sample_tile(n_batch, d)
    # A tile of samples at a time (as in the forward), each adding its terms of the sum over n.
    for n_lo in range(0, n_batch, tile):
        n_hi = min(n_lo + tile, n_batch)
        n4 = n_hi - (n_hi - n_lo) % 4
        # dw[j] is written by one thread only: prange over blocks of four output features j, never over n.
        for jb in prange((p + 3) // 4):
            j = 4 * jb
            if j < p4:
                for n in range(n_lo, n4, 4):
                    d00 = delta[n, j]; d01 = delta[n, j + 1]; d02 = delta[n, j + 2]; d03 = delta[n, j + 3]
                    d10 = delta[n + 1, j]; d11 = delta[n + 1, j + 1]; d12 = delta[n + 1, j + 2]; d13 = delta[n + 1, j + 3]
                    d20 = delta[n + 2, j]; d21 = delta[n + 2, j + 1]; d22 = delta[n + 2, j + 2]; d23 = delta[n + 2, j + 3]
                    d30 = delta[n + 3, j]; d31 = delta[n + 3, j + 1]; d32 = delta[n + 3, j + 2]; d33 = delta[n + 3, j + 3]
                    for i in range(d):
                        a0 = a[n, i]; a1 = a[n + 1, i]; a2 = a[n + 2, i]; a3 = a[n + 3, i]
                        s0 = dw[j, i]; s1 = dw[j + 1, i]; s2 = dw[j + 2, i]; s3 = dw[j + 3, i]
                        # dL/dw[j,i] = sum_n delta[n,j] a[n,i], four terms n..n+3 for each of four features
                        s0 += d00 * a0; s1 += d01 * a0; s2 += d02 * a0; s3 += d03 * a0
                        s0 += d10 * a1; s1 += d11 * a1; s2 += d12 * a1; s3 += d13 * a1
                        s0 += d20 * a2; s1 += d21 * a2; s2 += d22 * a2; s3 += d23 * a2
                        s0 += d30 * a3; s1 += d31 * a3; s2 += d32 * a3; s3 += d33 * a3
                        dw[j, i] = s0; dw[j + 1, i] = s1; dw[j + 2, i] = s2; dw[j + 3, i] = s3
            for jj in range(j, min(j + 4, p)):
                for n in range(n4 if jj < p4 else n_lo, n_hi):     # the leftovers, one at a time
                    for i in range(d):
                        dw[jj, i] += delta[n, jj] * a[n, i]        # dL/dw[j,i] = sum_n delta[n,j] a[n,i]


@jit(fastmath=True, parallel=False)
def linear_bias_grad_loops(delta, db):
    n_batch, p = delta.shape
    for j in range(p):
        db[j] = db.dtype.type(0)
    for n in range(n_batch):
        for j in range(p):
            db[j] += delta[n, j]                               # dL/db[j] = sum_n delta[n,j]


def linear_forward(x, weight, bias):
    a = as_array("linear", "input", x)
    w = as_array("linear", "weight", weight)
    b = None if bias is None else as_array("linear", "bias", bias)
    z = np.empty((a.shape[0], w.shape[0]), a.dtype)
    linear_forward_loops(a, w, b, z)
    return as_tensor(z)


def linear_backward(grad_z, x, weight, needs):
    """The delta rule for eq. 5, with delta = dL/dz [N, P].

    z[n,j] depends on w[j,i] through the one term w[j,i] * a[n,i], on b[j] with slope 1,
    and on a[n,i] through w[j,i] * a[n,i] for every j, so

        dL/dw[j,i] = sum_n delta[n,j] * a[n,i]
        dL/db[j]   = sum_n delta[n,j]
        dL/da[n,i] = sum_j delta[n,j] * w[j,i]     (the delta of the layer below, before its
                                                    activation's derivative)
    """
    needs_input, needs_weight, needs_bias = needs
    delta = as_array("linear", "grad_output", grad_z)
    grad_a = grad_w = grad_b = None
    if needs_input:
        w = as_array("linear", "weight", weight)
        da = np.empty((delta.shape[0], w.shape[1]), delta.dtype)
        linear_input_grad_loops(delta, w, da)
        grad_a = as_tensor(da)
    if needs_weight:
        a = as_array("linear", "input", x)
        dw = np.empty((delta.shape[1], a.shape[1]), delta.dtype)
        linear_weight_grad_loops(delta, a, dw)
        grad_w = as_tensor(dw)
    if needs_bias:
        db = np.empty(delta.shape[1], delta.dtype)
        linear_bias_grad_loops(delta, db)
        grad_b = as_tensor(db)
    return grad_a, grad_w, grad_b


linear = linear_op(registered(Kernels(linear_forward, linear_backward)))

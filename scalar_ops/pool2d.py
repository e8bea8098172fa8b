"""Max pooling as literal loops (seed 000 eq. 2, generalised to any window, stride and padding):

    z[n, c, m, l] = max_{0 <= i < K_h, 0 <= j < K_w} a[n, c, m*s_h + i - p_h, l*s_w + j - p_w]

with padding counting as -inf (so a padded position never wins: it is skipped), and

    argmax[n, c, m, l] = h*W + w  of the maximum a[n, c, h, w], the flat index into the H x W plane.

Ties go to the FIRST maximum in window order (row-major over (i, j)): a later value
replaces the running maximum only if it is strictly greater, or NaN. This is PyTorch's
CPU rule ``val > maxval or isnan(val)``, so NaN propagates as in PyTorch, and the index
starts at the window's first in-image element, as in PyTorch, when every value is -inf.
"""

import numpy as np

from scalar_ops._dispatch import registered
from scalar_ops._numba import INDEX, as_array, as_tensor, at, jit, prange
from simple_conv_net.functions import Kernels, Window, max_pool2d_op


@jit
def max_pool2d_forward_loops(a, z, argmax, k_h, k_w, s_h, s_w, p_h, p_w):
    n_batch, c, h, w = a.shape
    _, _, h_out, w_out = z.shape
    # z[n, ch] is written by one thread only: prange over the (n, ch) pairs.
    for t in prange(n_batch * c):
        n = t // c
        ch = t % c
        for m in range(h_out):
            # window rows m*s_h + i - p_h for the i with 0 <= m*s_h + i - p_h < H (the rest is -inf padding)
            i_lo = max(0, p_h - m * s_h)
            i_hi = min(k_h, h + p_h - m * s_h)
            for l in range(w_out):
                j_lo = max(0, p_w - l * s_w)
                j_hi = min(k_w, w + p_w - l * s_w)
                best = a.dtype.type(-np.inf)
                best_index = (m * s_h + i_lo - p_h) * w + (l * s_w + j_lo - p_w)
                for i in range(i_lo, i_hi):
                    r = m * s_h + i - p_h
                    for j in range(j_lo, j_hi):
                        q = l * s_w + j - p_w
                        # seed 000 eq. 2: z[n,c,m,l] = max over the window of a[n,c,m*s+i-p,l*s+j-p]
                        value = a[n, ch, at(r), at(q)]
                        # strictly greater, or NaN; '|' and the two selects (not 'or' and an if
                        # block) compile without a branch, which random data would mispredict
                        better = (value > best) | (value != value)
                        best = value if better else best
                        best_index = r * w + q if better else best_index
                z[n, ch, m, l] = best
                argmax[n, ch, m, l] = best_index


@jit
def max_pool2d_backward_loops(delta, argmax, da):
    n_batch, c, hw = da.shape                        # da seen as [N, C, H*W]: argmax is a flat index into it
    _, _, h_out, w_out = delta.shape
    for t in prange(n_batch * c):
        n = t // c
        ch = t % c
        for k in range(hw):
            da[n, ch, k] = da.dtype.type(0)
        for m in range(h_out):
            for l in range(w_out):
                # the window's maximum a[n,c,h,w], h*W + w = argmax[n,c,m,l], is the only input z[n,c,m,l] depends on
                da[n, ch, at(argmax[n, ch, m, l])] += delta[n, ch, m, l]


def max_pool2d_forward(x, g: Window):
    a = as_array("max_pool2d", "input", x)
    z = np.empty(g.output_shape, a.dtype)
    argmax = np.empty(g.output_shape, np.int64)
    max_pool2d_forward_loops(a, z, argmax, g.k_h, g.k_w, g.s_h, g.s_w, g.p_h, g.p_w)
    return as_tensor(z), as_tensor(argmax)


def max_pool2d_backward(grad_z, argmax, g: Window):
    """The delta rule for eq. 2, with delta = dL/dz [N, C, H_out, W_out].

    z[n,c,m,l] equals its window's maximum a[n,c,h*,w*] (h* * W + w* = argmax[n,c,m,l]), so
    dz[n,c,m,l]/da[n,c,h,w] is 1 at (h*, w*) and 0 elsewhere in the window:

        dL/da[n,c,h,w] = sum over the windows (m, l) whose argmax is (h, w) of delta[n,c,m,l]

    i.e. each delta is sent back to its window's argmax, and where windows overlap and
    pick the same element, the deltas add up.
    """
    delta = as_array("max_pool2d", "grad_output", grad_z)
    index = as_array("max_pool2d", "argmax", argmax, dtypes=INDEX)
    da = np.empty(g.input_shape, delta.dtype)
    max_pool2d_backward_loops(delta, index, da.reshape(g.n, g.c_in, g.h * g.w))
    return as_tensor(da)


max_pool2d = max_pool2d_op(registered(Kernels(max_pool2d_forward, max_pool2d_backward)))

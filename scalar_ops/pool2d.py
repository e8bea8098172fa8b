"""Max pooling as literal loops (seed 000 eq. 2, generalised to any window, stride, padding and dilation):

    z[n, c, m, l] = max_{0 <= i < K_h, 0 <= j < K_w} a[n, c, m*s_h + i*d_h - p_h, l*s_w + j*d_w - p_w]

with padding counting as -inf (so a padded position never wins: it is skipped; so is a position past the
input's end, where ceil_mode's last window runs over), and

    argmax[n, c, m, l] = h*W + w  of the maximum a[n, c, h, w], the flat index into the H x W plane.

Ties go to the FIRST maximum in window order (row-major over (i, j)): a later value
replaces the running maximum only if it is strictly greater, or NaN. This is PyTorch's
CPU rule ``val > maxval or isnan(val)``, so NaN propagates as in PyTorch, and the index
starts at the window's first in-image element, as in PyTorch, when every value is -inf.
"""

import numpy as np

from scalar_ops._dispatch import registered
from scalar_ops._numba import INDEX, as_array, as_tensor, at, jit, prange
from simple_conv_net.functions import Kernels, max_pool2d_op
from simple_conv_net.window import Window


@jit(parallel=False)
def taps(start, d, k, size):
    """The window offsets i (as range bounds lo, hi) whose position start + i*d is in [0, size).

    start + i*d >= 0     <=>  i >= ceil(-start / d)
    start + i*d < size   <=>  i <= ceil((size - start) / d) - 1
    The others read padding (-inf in max pooling) and never win. (d = 1, as in every model here, without
    the divisions: this runs once per window.)
    """
    if d == 1:
        return max(-start, 0), min(size - start, k)
    lo = -(start // d)                # ceil(-start / d), with Python's floor division
    hi = -((start - size) // d)       # ceil((size - start) / d)
    return max(lo, 0), min(hi, k)


@jit
def max_pool2d_forward_loops(a, z, argmax, k_h, k_w, s_h, s_w, p_h, p_w, d_h, d_w):
    n_batch, c, h, w = a.shape
    _, _, h_out, w_out = z.shape
    # z[n, ch] is written by one thread only: prange over the (n, ch) pairs.
    for t in prange(n_batch * c):
        n = t // c
        ch = t % c
        for m in range(h_out):
            # window rows m*s_h + i*d_h - p_h for the i with 0 <= m*s_h + i*d_h - p_h < H (the rest is padding)
            i_lo, i_hi = taps(m * s_h - p_h, d_h, k_h, h)
            for l in range(w_out):
                j_lo, j_hi = taps(l * s_w - p_w, d_w, k_w, w)
                best = a.dtype.type(-np.inf)
                best_index = (m * s_h + i_lo * d_h - p_h) * w + (l * s_w + j_lo * d_w - p_w)
                for i in range(i_lo, i_hi):
                    r = m * s_h + i * d_h - p_h
                    for j in range(j_lo, j_hi):
                        q = l * s_w + j * d_w - p_w
                        # seed 000 eq. 2: z[n,c,m,l] = max over the window of a[n,c,m*s+i*d-p,l*s+j*d-p]
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
    max_pool2d_forward_loops(a, z, argmax, g.k_h, g.k_w, g.s_h, g.s_w, g.p_h, g.p_w, g.d_h, g.d_w)
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

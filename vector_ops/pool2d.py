"""Max pooling as a reduction over strided windows (seed 000 eq. 2, task 2b; seed 003 max-pool backward).

    windows   [N, C, H_out, W_out, K_h*K_w]   every window of the -inf padded input, flattened
    z         [N, C, H_out, W_out]            = max over the last axis
    argmax    [N, C, H_out, W_out]            the flat index h*W + w of the (first) maximum in the input plane
"""

import torch

from simple_conv_net.functions import Kernels, Window, max_pool2d_op
from vector_ops.conv2d import pad2d, windows


def max_pool2d_forward(x, g: Window):
    x_pad = pad2d(x, g.p_h, g.p_w, value=float("-inf"))
    view = windows(x_pad, g)                                  # [N, C, K_h, K_w, H_out, W_out]
    flat = view.permute(0, 1, 4, 5, 2, 3).reshape(g.n, g.c_in, g.h_out, g.w_out, g.k_h * g.k_w)
    z, offset = flat.max(dim=-1)                              # first maximum in window order on ties
    # Window offset (i, j) of output (m, l) sits at input row m*s_h + i - p_h, column l*s_w + j - p_w.
    rows = torch.arange(g.h_out, device=x.device)[:, None] * g.s_h - g.p_h + offset // g.k_w
    cols = torch.arange(g.w_out, device=x.device)[None, :] * g.s_w - g.p_w + offset % g.k_w
    return z, rows * g.w + cols


def max_pool2d_backward(grad_z, argmax, g: Window):
    """dL/da[n, c, h, w] = sum of delta[n, c, m, l] over the windows (m, l) whose maximum is a[n, c, h, w].

    Gradients of overlapping windows that pick the same element accumulate (scatter-add).
    """
    grad_x = grad_z.new_zeros((g.n, g.c_in, g.h * g.w))
    grad_x.scatter_add_(2, argmax.reshape(g.n, g.c_in, -1), grad_z.reshape(g.n, g.c_in, -1))
    return grad_x.reshape(g.input_shape)


max_pool2d = max_pool2d_op(Kernels(max_pool2d_forward, max_pool2d_backward))

"""Max pooling as a running maximum over strided window views (seed 000 eq. 2, task 2b; seed 003 max-pool backward).

    view      [N, C, K_h, K_w, H_out, W_out]  every window of the -inf padded input, a strided view
    z         [N, C, H_out, W_out]            = max over the window offsets (i, j)
    argmax    [N, C, H_out, W_out]            the flat index h*W + w of the (first) maximum in the input plane
"""

import torch

from simple_conv_net.functions import Kernels, Window, max_pool2d_op
from vector_ops.conv2d import pad2d, windows


def max_pool2d_forward(x, g: Window):
    """One pass per window offset (i, j) over strided views of the input, no window tensor copied.

    z is the running maximum (torch.maximum, so a NaN in a window propagates); the argmax is then the
    first offset, in window order, whose value equals z (or is NaN when z is): the offsets are visited
    last to first and each match overwrites, so the first one wins, as max(dim) picks it.
    """
    x_pad = pad2d(x, g.p_h, g.p_w, value=float("-inf"))
    view = windows(x_pad, g)                                  # [N, C, K_h, K_w, H_out, W_out], a view
    offsets = [(i, j) for i in range(g.k_h) for j in range(g.k_w)]
    planes = [view[:, :, i, j] for i, j in offsets]          # [N, C, H_out, W_out] views, one per offset
    z = planes[0].clone() if len(planes) == 1 else torch.maximum(planes[0], planes[1])
    for plane in planes[2:]:
        torch.maximum(z, plane, out=z)
    # Offset (i, j) of output (m, l) sits at input row m*s_h + i - p_h, column l*s_w + j - p_w:
    # flat index base[m, l] + i*W + j with base = (m*s_h - p_h)*W + l*s_w - p_w.
    argmax = torch.zeros(z.shape, dtype=torch.int64, device=x.device)
    # A NaN anywhere in z makes its sum NaN (so may inf - inf: then the NaN-aware path runs needlessly).
    # Asking is a host round trip on a GPU, so there the NaN-aware path always runs.
    nan = z.isnan() if x.device.type != "cpu" or z.sum().isnan() else None
    for (i, j), v in reversed(list(zip(offsets, planes))):
        match = v == z
        if nan is not None:
            match |= nan & v.isnan()
        argmax.masked_fill_(match, i * g.w + j)
    rows = torch.arange(g.h_out, device=x.device)[:, None] * (g.s_h * g.w) - g.p_h * g.w
    cols = torch.arange(g.w_out, device=x.device)[None, :] * g.s_w - g.p_w
    return z, argmax.add_(rows + cols)


def max_pool2d_backward(grad_z, argmax, g: Window):
    """dL/da[n, c, h, w] = sum of delta[n, c, m, l] over the windows (m, l) whose maximum is a[n, c, h, w].

    Gradients of overlapping windows that pick the same element accumulate (scatter-add).
    """
    grad_x = grad_z.new_zeros((g.n, g.c_in, g.h * g.w))
    grad_x.scatter_add_(2, argmax.reshape(g.n, g.c_in, -1), grad_z.reshape(g.n, g.c_in, -1))
    return grad_x.reshape(g.input_shape)


max_pool2d = max_pool2d_op(Kernels(max_pool2d_forward, max_pool2d_backward))

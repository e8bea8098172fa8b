"""Max pooling as a running maximum over strided window views (seed 000 eq. 2, task 2b; seed 003 max-pool backward).

    view      [N, C, K_h, K_w, H_out, W_out]  every window of the -inf padded input, a strided view
    z         [N, C, H_out, W_out]            = max over the window offsets (i, j)
    argmax    [N, C, H_out, W_out]            the flat index h*W + w, in the input plane, of the element z came from

Which element, where several could have: PyTorch's rule (its CPU and CUDA kernels walk the window
in row-major order and take ``value > best or isnan(value)``, starting from -inf at the window's
first element inside the image), so the gradient goes where PyTorch sends it:

    ties              the FIRST maximum in window order;
    NaN in the window z is NaN and the LAST NaN in window order is the argmax;
    all values -inf   the window's first element inside the image (never the padding).
"""

import torch

from simple_conv_net.functions import Kernels, Window, max_pool2d_op
from vector_ops.conv2d import pad2d, windows


def inside_image(offset: int, stride: int, padding: int, size: int, size_out: int, device) -> torch.Tensor:
    """bool [size_out]: whether output position m reads input index m*stride + offset - padding inside [0, size)."""
    index = torch.arange(size_out, device=device) * stride + offset - padding
    return (index >= 0) & (index < size)


def max_pool2d_forward(x, g: Window):
    """One pass per window offset (i, j) over strided views of the input, no window tensor copied.

    z is the running maximum (torch.maximum, so a NaN in a window propagates). The argmax is then
    found by matching: offsets are visited last to first and each match overwrites, so the first
    offset, in window order, whose value equals z wins; an offset that reads padding matches only
    where it is inside the image (the padding's -inf must not equal an all -inf window's maximum).
    Where z is NaN a second pass, first to last, lets the last NaN win.
    """
    tracing = torch.compiler.is_compiling()
    x_pad = pad2d(x, g.p_h, g.p_w, value=float("-inf"))
    view = windows(x_pad, g)                                  # [N, C, K_h, K_w, H_out, W_out], a view
    offsets = [(i, j) for i in range(g.k_h) for j in range(g.k_w)]
    planes = [view[:, :, i, j] for i, j in offsets]          # [N, C, H_out, W_out] views, one per offset
    z = planes[0].clone() if len(planes) == 1 else torch.maximum(planes[0], planes[1])
    for plane in planes[2:]:
        # In place, but not in a traced graph: torch.export inlines the Function and runs its graph
        # with grad enabled, where out= refuses an input that requires grad.
        z = torch.maximum(z, plane, out=None if tracing else z)
    # Offset (i, j) of output (m, l) sits at input row m*s_h + i - p_h, column l*s_w + j - p_w:
    # flat index base[m, l] + i*W + j with base = (m*s_h - p_h)*W + l*s_w - p_w.
    argmax = torch.zeros(z.shape, dtype=torch.int64, device=x.device)
    rows_in = [inside_image(i, g.s_h, g.p_h, g.h, g.h_out, x.device)[:, None] for i in range(g.k_h)]  # [H_out, 1]
    cols_in = [inside_image(j, g.s_w, g.p_w, g.w, g.w_out, x.device)[None, :] for j in range(g.k_w)]  # [1, W_out]
    for (i, j), v in reversed(list(zip(offsets, planes))):
        match = v == z
        if g.p_h or g.p_w:
            match &= rows_in[i] & cols_in[j]
        argmax.masked_fill_(match, i * g.w + j)
    # A NaN anywhere in z makes its sum NaN (so may inf - inf: then the NaN pass runs needlessly).
    # Asking is a host round trip on a GPU, and a branch on data that a traced graph cannot hold,
    # so on a GPU and under torch.compile or torch.export the NaN pass always runs.
    if x.device.type != "cpu" or tracing or z.sum().isnan():
        nan = z.isnan()
        for (i, j), v in zip(offsets, planes):
            argmax.masked_fill_(nan & v.isnan(), i * g.w + j)
    rows = torch.arange(g.h_out, device=x.device)[:, None] * (g.s_h * g.w) - g.p_h * g.w
    cols = torch.arange(g.w_out, device=x.device)[None, :] * g.s_w - g.p_w
    return z, argmax.add_(rows + cols)


def max_pool2d_backward(grad_z, argmax, g: Window):
    """dL/da[n, c, h, w] = sum of delta[n, c, m, l] over the windows (m, l) whose maximum is a[n, c, h, w].

    Gradients of overlapping windows that pick the same element accumulate (scatter-add).
    """
    grad_x = grad_z.new_zeros((g.n, g.c_in, g.h * g.w))
    windows_per_plane = g.h_out * g.w_out
    grad_x.scatter_add_(2, argmax.reshape(g.n, g.c_in, windows_per_plane), grad_z.reshape(g.n, g.c_in, windows_per_plane))
    return grad_x.reshape(g.input_shape)


max_pool2d = max_pool2d_op(Kernels(max_pool2d_forward, max_pool2d_backward))

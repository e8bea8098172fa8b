"""Max pooling as running maxima over strided views of the input (seed 000 eq. 2, task 2b; seed 003 max-pool backward).

    z         [N, C, H_out, W_out]    = max over the window offsets (i, j) of x[n, c, m*s_h + i*d_h - p_h, l*s_w + j*d_w - p_w]
    argmax    [N, C, H_out, W_out]    the flat index h*W + w, in the input plane, of the element z came from

(padding -inf; dilation d spaces the window's taps). Where every window lies inside the input (no padding,
and no ceil_mode window running past its end) the maximum is taken in two passes, along the rows and then
across them (a few elementwise maxima over half-size views: faster than native PyTorch's pooling on 2x2
windows); else over the K_h*K_w offsets of the -inf padded input.

Which element, where several could have: PyTorch's rule (its CPU and CUDA kernels walk the window
in row-major order and take ``value > best or isnan(value)``, starting from -inf at the window's
first element inside the image), so the gradient goes where PyTorch sends it:

    ties              the FIRST maximum in window order;
    NaN in the window z is NaN and the LAST NaN in window order is the argmax;
    all values -inf   the window's first element inside the image (never the padding).
"""

import torch

from simple_conv_net.functions import Kernels, max_pool2d_op
from simple_conv_net.window import Window
from vector_ops.conv2d import eager_cache, image_blocks, pad2d, tracing, windows


def inside_image(offset: int, stride: int, padding: int, size: int, size_out: int, device) -> torch.Tensor:
    """bool [size_out]: whether output position m reads input index m*stride + offset - padding inside [0, size)."""
    index = torch.arange(size_out, device=device) * stride + offset - padding
    return (index >= 0) & (index < size)


def max_pool2d_forward(x, g: Window):
    """z and the flat index h*W + w of the element it came from (PyTorch's choice, see the module doc).

    Where every window lies inside the input the maximum is separable (:func:`separable_maximum`); else every
    window offset is matched against z (:func:`matched_maximum`). Both give the window-local offset
    i*d_h*W + j*d_w of the winner; where z is NaN, :func:`last_nan` then picks the last NaN instead.
    """
    traced = tracing()
    blocks = image_blocks(g.n, g.c_in * g.h * g.w)
    if g.padded_h != g.h or g.padded_w != g.w:
        z, offset = matched_maximum(x, g, in_place=not traced)
    elif len(blocks) == 1:
        z, offset = separable_maximum(x, g)
    else:
        # A block of images at a time, so that the passes over a block find it in the L2 cache.
        z, offset = x.new_empty(g.output_shape), torch.empty(g.output_shape, dtype=torch.int64, device=x.device)
        for images in blocks:
            z[images], offset[images] = separable_maximum(x[images], g._replace(n=images.stop - images.start))
    # A NaN anywhere in z makes its sum NaN (so may inf - inf: then the NaN pass runs needlessly).
    # Asking is a host round trip on a GPU, and a branch on data that a traced graph cannot hold,
    # so on a GPU and while tracing (torch.compile, torch.export, FakeTensorMode) the NaN pass always runs.
    if x.device.type != "cpu" or traced or z.sum().isnan():
        last_nan(windows(pad2d(x, g, value=float("-inf")), g), z, offset, g)
    return z, offset.add_(window_origins(g._replace(n=0), x.device))


@eager_cache
def window_origins(g: Window, device) -> torch.Tensor:
    """int64 [H_out, W_out]: offset (i, j) of output (m, l) sits at input row m*s_h + i*d_h - p_h, column
    l*s_w + j*d_w - p_w, i.e. at flat index origin[m, l] + i*d_h*W + j*d_w with origin = (m*s_h - p_h)*W + l*s_w - p_w.
    The same for every batch (g has n = 0), so it is made once per geometry and device (eager_cache)."""
    rows = torch.arange(g.h_out, device=device)[:, None] * (g.s_h * g.w) - g.p_h * g.w
    cols = torch.arange(g.w_out, device=device)[None, :] * g.s_w - g.p_w
    return rows + cols


def _strided(t, dim: int, offset: int, stride: int, count: int):
    """Entries offset, offset + stride, ... (count of them) of ``t`` along ``dim``, as a view."""
    return t[(slice(None),) * dim + (slice(offset, offset + stride * (count - 1) + 1, stride),)]


def separable_maximum(x, g: Window):
    """The window maximum as a maximum over rows of maxima within rows (every offset inside the input).

    row_max   [N, C, H, W_out]      = max over j of x[n, c, r, l*s_w + j*d_w];  col the first j reaching it
    z         [N, C, H_out, W_out]  = max over i of row_max[n, c, m*s_h + i*d_h, l];  row the first such i
    offset    [N, C, H_out, W_out]  = row*d_h*W + col[n, c, m*s_h + row*d_h, l]*d_w

    Taking the first maximum within each row, then the first row holding the window's maximum, is the
    first maximum in row-major window order. (NaN: see last_nan.)
    """
    row_max, col = _running_maximum(x, 3, g.k_w, g.s_w, g.d_w, g.w_out)     # [N, C, H, W_out] each
    z, row = _running_maximum(row_max, 2, g.k_h, g.s_h, g.d_h, g.h_out)     # [N, C, H_out, W_out] each
    rows_read = (row if g.d_h == 1 else row * g.d_h) + window_rows(g._replace(n=0), x.device)  # input row of z
    cols = col.gather(2, rows_read)
    return z, torch.mul(row, g.d_h * g.w).add_(cols if g.d_w == 1 else cols * g.d_w)


@eager_cache
def window_rows(g: Window, device) -> torch.Tensor:
    """int64 [H_out, 1]: m*s_h, the first input row of output row m's windows."""
    return torch.arange(g.h_out, device=device)[:, None] * g.s_h


def _running_maximum(t, dim: int, k: int, stride: int, dilation: int, count: int):
    """Along ``dim``: max over offsets 0 <= o < k of t[..., p*stride + o*dilation, ...] for 0 <= p < count, and
    the first offset o that reaches it (a later offset wins only when strictly greater). For k = 2, the
    pools of every model here, that offset is the comparison itself (bool): two operations a level."""
    best = _strided(t, dim, 0, stride, count)
    which = torch.zeros(best.shape, dtype=torch.bool, device=t.device) if k == 1 else None
    for o in range(1, k):
        value = _strided(t, dim, o * dilation, stride, count)
        better = value > best
        which = better if o == 1 else torch.where(better, o, which)
        best = torch.maximum(best, value)
    return (best.clone() if k == 1 else best), which


def matched_maximum(x, g: Window, in_place: bool = True):
    """One pass per window offset (i, j) over strided views of the -inf padded input, no window copied.

    z is the running maximum (torch.maximum, so a NaN in a window propagates). The offset is then
    found by matching: offsets are visited last to first and each match overwrites, so the first
    offset, in window order, whose value equals z wins; an offset that reads padding matches only
    where it is inside the image (the padding's -inf must not equal an all -inf window's maximum).
    The running maximum is updated in place except in a traced graph (``in_place=False``): torch.export
    inlines the Function and runs its graph with grad enabled, where out= refuses an input that
    requires grad.
    """
    view = windows(pad2d(x, g, value=float("-inf")), g)        # [N, C, K_h, K_w, H_out, W_out], a view
    offsets = [(i, j) for i in range(g.k_h) for j in range(g.k_w)]
    planes = [view[:, :, i, j] for i, j in offsets]          # [N, C, H_out, W_out] views, one per offset
    z = planes[0].clone() if len(planes) == 1 else torch.maximum(planes[0], planes[1])
    for plane in planes[2:]:
        z = torch.maximum(z, plane, out=z if in_place else None)
    offset = torch.zeros(z.shape, dtype=torch.int64, device=x.device)
    rows_in = [inside_image(i * g.d_h, g.s_h, g.p_h, g.h, g.h_out, x.device)[:, None] for i in range(g.k_h)]
    cols_in = [inside_image(j * g.d_w, g.s_w, g.p_w, g.w, g.w_out, x.device)[None, :] for j in range(g.k_w)]
    for (i, j), v in reversed(list(zip(offsets, planes))):
        match = (v == z) & rows_in[i] & cols_in[j]                   # [H_out, 1] and [1, W_out] masks
        offset.masked_fill_(match, i * g.d_h * g.w + j * g.d_w)
    return z, offset


def last_nan(view, z, offset, g: Window) -> None:
    """Where z is NaN, set ``offset`` (in place) to the last NaN of the window, first to last over the
    offsets of ``view`` [N, C, K_h, K_w, H_out, W_out]."""
    nan = z.isnan()
    for i in range(g.k_h):
        for j in range(g.k_w):
            offset.masked_fill_(nan & view[:, :, i, j].isnan(), i * g.d_h * g.w + j * g.d_w)


def max_pool2d_backward(grad_z, argmax, g: Window):
    """dL/da[n, c, h, w] = sum of delta[n, c, m, l] over the windows (m, l) whose maximum is a[n, c, h, w].

    Gradients of overlapping windows that pick the same element accumulate (scatter-add).
    """
    grad_x = grad_z.new_zeros((g.n, g.c_in, g.h * g.w))
    windows_per_plane = g.h_out * g.w_out
    grad_x.scatter_add_(2, argmax.reshape(g.n, g.c_in, windows_per_plane), grad_z.reshape(g.n, g.c_in, windows_per_plane))
    return grad_x.reshape(g.input_shape)


max_pool2d = max_pool2d_op(Kernels(max_pool2d_forward, max_pool2d_backward))

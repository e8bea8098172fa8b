"""Convolution as one matrix product: im2col, then W_rows @ columns (seed 000, task 2a and 2d).

Eq. 1 with stride s, padding p and dilation d, rewritten for one image n (column length C_in*K_h*K_w):

    columns[n]  [C_in*K_h*K_w, H_out*W_out]   columns[n][(c,i,j), (m,l)] = a_pad[n, c, m*s_h + i*d_h, l*s_w + j*d_w]
    W_rows      [C_out, C_in*K_h*K_w]         each filter flattened to a row
    z[n]        [C_out, H_out*W_out]          = W_rows @ columns[n] + b[:, None]

With G groups each group's filters see only its C_in/G channels: the rows of columns split into G blocks of
D = C_in/G*K_h*K_w, and z[n] is G products, [C_out/G, D] @ [D, H_out*W_out] (:func:`grouped_product`).

The columns repeat each input value up to K_h*K_w times (25 for a 5x5 kernel), so they are made
a block of images at a time (:func:`image_blocks`), each block's columns small enough to stay in
the L2 cache between being written and being multiplied: for LeNet-5's first conv (3 -> 6
channels on 32x32 images) the columns of a batch of 256 are 60 MB, and making them all at
once took five times as long as making them block by block.

At stride 1 the forward may instead take K_h products over whole rows of the input copied only K_w
times (:func:`shifted_rows_forward`); :func:`shifted_rows_pay` is the one rule choosing between the two.
The backward is the columns' for every shape.
"""

import functools

import torch

from simple_conv_net.functions import Kernels, conv2d_op
from simple_conv_net.window import Window

# Entries per block of images and per intra-op thread (of the columns here, of the input in max pooling):
# 2**17 float32 entries are 512 KiB, a quarter of a 2 MiB L2 cache, and each thread works on its share
# of a block in its own core's L2. A block of one thread's size would leave the others idle in most of a
# block's passes: ATen runs an elementwise pass of fewer than 32768 entries on one thread.
BLOCK_ENTRIES_PER_THREAD = 2**17


def block_entries() -> int:
    """The entries of one block of images: BLOCK_ENTRIES_PER_THREAD for each intra-op thread."""
    return BLOCK_ENTRIES_PER_THREAD * torch.get_num_threads()


def tracing() -> bool:
    """Whether the tensors here may be a tracer's: while torch.compile or torch.export traces
    (``torch.compiler.is_compiling()``) or any dispatch mode is active (FakeTensorMode, a proxy tracer). Then no
    index tensor is cached (:func:`eager_cache`) and no branch reads a tensor's values. (Dynamo, tracing this,
    sees is_compiling() true and never reaches the dispatch stack.)"""
    return torch.compiler.is_compiling() or torch._C._len_torch_dispatch_stack() > 0


def eager_cache(make):
    """``functools.lru_cache`` for a function making index tensors, in eager mode only.

    While a tracer runs (:func:`tracing`) the tensor is made afresh: a fake or symbolic tensor must never outlive
    its trace (it did: a second torch.export of vector LeNet found the first one's fake tensors among its
    constants), and the tracer then records how the tensor is made; dynamo never inlines the cache (which it
    warns about). Eager calls share one tensor per key. The lru_cache itself is ``.cached``.
    """
    cached = functools.lru_cache(maxsize=64)(make)

    @functools.wraps(make)
    def get(*key):
        return make(*key) if tracing() else cached(*key)

    get.cached = cached
    return get


def pad2d(x, g: Window, value=0.0):
    """x [N, C, H, W] -> [N, C, H_pad, W_pad] with g.p_h rows of ``value`` before and g.after_h after (likewise
    the columns), x in between."""
    if g.padded_h == g.h and g.padded_w == g.w:
        return x
    n, c, h, w = x.shape
    padded = x.new_full((n, c, g.padded_h, g.padded_w), value)
    padded[:, :, g.p_h:g.p_h + h, g.p_w:g.p_w + w] = x
    return padded


def windows(x_pad, g: Window):
    """Every dilated k_h x k_w window of x_pad [N, C, H_pad, W_pad] as a strided view, no copy.

    Returns [N, C, K_h, K_w, H_out, W_out] with view[n, c, i, j, m, l] = x_pad[n, c, m*s_h + i*d_h, l*s_w + j*d_w].
    The view starts where x_pad starts (as_strided keeps its storage offset when given none, which
    also keeps the offset, a plain int, out of a traced graph).
    """
    sn, sc, sh, sw = x_pad.stride()
    shape = (x_pad.shape[0], x_pad.shape[1], g.k_h, g.k_w, g.h_out, g.w_out)
    return x_pad.as_strided(shape, (sn, sc, sh * g.d_h, sw * g.d_w, sh * g.s_h, sw * g.s_w))


def im2col(x, g: Window):
    """x [N, C_in, H, W] -> columns [N, C_in*K_h*K_w, H_out*W_out] (the one copy the product needs)."""
    return windows(pad2d(x, g), g).reshape(g.n, g.c_in * g.k_h * g.k_w, g.h_out * g.w_out)


def col2im(columns, g: Window):
    """Adjoint of im2col: columns [N, C_in*K_h*K_w, H_out*W_out] -> image [N, C_in, H, W].

    Each entry (c, i, j), (m, l) is added onto a_pad[n, c, m*s_h + i*d_h, l*s_w + j*d_w], the position im2col
    read it from (:func:`source_positions`), in one index_add_ (ten times faster here at batch 1 than
    K_h*K_w strided adds, and two to five times faster at larger batches); what lands on the padding
    is cropped away.
    """
    image = columns.new_zeros((g.n, g.c_in * g.padded_h * g.padded_w))      # [N, C_in*H_pad*W_pad]
    image.index_add_(1, source_positions(g._replace(n=0), columns.device), columns.reshape(g.n, -1))
    return image.view(g.n, g.c_in, g.padded_h, g.padded_w)[:, :, g.p_h:g.p_h + g.h, g.p_w:g.p_w + g.w]


@eager_cache
def source_positions(g: Window, device) -> torch.Tensor:
    """int64 [C_in*K_h*K_w*H_out*W_out]: for each column entry ((c, i, j), (m, l)) in im2col's order, the
    flat position c*H_pad*W_pad + (m*s_h + i*d_h)*W_pad + l*s_w + j*d_w in the padded image it was read from.
    The same for every batch (g has n = 0), so it is made once per geometry and device (:func:`eager_cache`)."""
    h_pad, w_pad = g.padded_h, g.padded_w
    c = torch.arange(g.c_in, device=device)[:, None, None, None, None] * (h_pad * w_pad)
    i = torch.arange(g.k_h, device=device)[None, :, None, None, None] * (g.d_h * w_pad)
    j = torch.arange(g.k_w, device=device)[None, None, :, None, None] * g.d_w
    m = torch.arange(g.h_out, device=device)[None, None, None, :, None] * (g.s_h * w_pad)
    l = torch.arange(g.w_out, device=device)[None, None, None, None, :] * g.s_w
    return (c + i + j + m + l).reshape(-1)


def image_blocks(n: int, per_image: int):
    """slice(first, last + 1) of consecutive blocks of the n images, each holding at most block_entries()
    entries of ``per_image`` entries each (at least one image per block).

    One block of all n in a traced graph (torch.compile, torch.export): there n is a symbol, blocks
    would fix it to one batch size, and inductor makes its own choice of loops anyway.
    """
    if torch.compiler.is_compiling():
        return [slice(0, n)]
    size = max(1, block_entries() // max(per_image, 1))
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


def column_blocks(g: Window):
    """(slice of the images, the Window of that block) for blocks whose columns fit block_entries()."""
    per_image = g.c_in * g.k_h * g.k_w * g.h_out * g.w_out
    return [(images, g._replace(n=images.stop - images.start)) for images in image_blocks(g.n, per_image)]


def product_plus_bias(filters, operand, bias, out=None):
    """filters [n, C_out, D] @ operand [n, D, L] (+ b[:, None]) -> [n, C_out, L] (into ``out``).

    The bias is fused into the product (baddbmm starts from it, expanded over the images: no copy).
    """
    if bias is None:
        return torch.bmm(filters, operand, out=out)
    return torch.baddbmm(bias[None, :, None].expand(filters.shape[0], -1, operand.shape[2]), filters, operand, out=out)


def grouped_product(w_rows, operand, g: Window):
    """Group by group, [G, C_out/G, D] @ [n, G, D, L]: w_rows [C_out, D] by operand [n, G*D, L] -> [n, C_out, L]
    (the rows of group k of w_rows meet rows k*D to (k + 1)*D of the operand)."""
    n, rows, length = operand.shape
    product = torch.matmul(w_rows.view(g.groups, -1, w_rows.shape[1]), operand.view(n, g.groups, -1, length))
    return product.view(n, -1, length)


def weighted_columns(x, w_rows, bias, g: Window, out=None):
    """W_rows @ columns[n] + b for the images of x [n, C_in, H, W] -> [n, C_out, H_out*W_out] (into ``out``).

    Explicit bmm of the weight expanded over the images (stride 0, no copy): torch.matmul of a 2-D weight
    that requires grad by a 3-D tensor takes a slower, copying path (about 3x here). With groups, one
    product per group (:func:`grouped_product`).
    """
    columns = im2col(x, g)                                   # [n, C_in*K_h*K_w, H_out*W_out]
    if g.groups == 1:
        return product_plus_bias(w_rows.expand(g.n, -1, -1), columns, bias, out=out)
    z = grouped_product(w_rows, columns, g)                  # [n, C_out, H_out*W_out]
    if bias is not None:
        z = z + bias[:, None]
    return z if out is None else out.copy_(z)


def conv2d_forward(x, weight, bias, g: Window):
    """z = conv(x, W) + b by the method :func:`shifted_rows_pay` picks for the shape."""
    if shifted_rows_pay(g):
        return shifted_rows_forward(x, weight, bias, g)
    return columns_forward(x, weight, bias, g)


def shifted_rows_pay(g: Window) -> bool:
    """The one rule choosing conv2d's forward method: shifted rows where they pay, else columns.

    Shifted rows copy the input K_w times instead of columns' K_h*K_w times, but make K_h products of
    depth C_in*K_w in place of one of depth C_in*K_h*K_w. Measured on one thread (5x5 kernels): 1.5x
    faster than columns for LeNet-5 (C_in*K_w = 15 and 30) and 1.15x for LeNet's second conv (100)
    from 16 images on; 2x slower with one input channel (depth 5) and 1.3x slower at batch 1 or 2
    (five calls instead of one). So: stride 1 (each row must be one flat run of the input), no dilation and
    one group (the rows hold consecutive taps of every channel), depth >= 15 and 8 images or more; in a traced
    graph the batch is a symbol and does not count (as in image_blocks).
    """
    enough_images = torch.compiler.is_compiling() or g.n >= 8
    return g.s_h == g.s_w == 1 and g.plain and g.c_in * g.k_w >= 15 and enough_images


def columns_forward(x, weight, bias, g: Window):
    """z[n] = W_rows @ columns[n] + b, a block of images at a time (the module doc's equation)."""
    w_rows = weight.reshape(g.c_out, -1)                     # [C_out, C_in*K_h*K_w], one filter per row
    blocks = column_blocks(g)
    if len(blocks) == 1:
        # The product is the output. (Also the form a traced graph takes: there out= would meet a weight
        # that requires grad, as torch.export runs the graph with grad enabled.)
        return weighted_columns(x, w_rows, bias, g).view(g.output_shape)
    z = x.new_empty(g.output_shape)
    for images, block in blocks:
        weighted_columns(x[images], w_rows, bias, block, out=z[images].view(block.n, g.c_out, -1))
    return z


def shifted_rows_forward(x, weight, bias, g: Window):
    """Stride 1: z as K_h products over whole rows of the flattened padded planes (no K_h*K_w columns).

    With a_flat[n, c, :] the padded plane [H_pad, W_pad] read row after row, output (m, l) reads
    a_flat[n, c, (m + i)*W_pad + l + j]. Computed at every l < W_pad of each output row m, the output
    is one flat run p = m*W_pad + l, 0 <= p < P = (H_out - 1)*W_pad + W_out, and

        rows[n]      [C_in*K_w, Q]        rows[n][(c, j), q] = a_flat[n, c, q + j]   (K_w shifted copies)
        W_i          [C_out, C_in*K_w]    W_i[co, (c, j)] = w[co, c, i, j]          (kernel row i)
        full[n]      [C_out, P]           = b[:, None] + sum_i W_i @ rows[n][:, i*W_pad : i*W_pad + P]

    where Q = H_pad*W_pad - (K_w - 1) and each slice of rows is a view (row stride Q, no copy). The
    entries l >= W_out of each output row mix the end of one input row with the start of the next;
    they are cropped (as_strided, row stride W_pad) and never read.
    """
    x_pad = pad2d(x.contiguous(), g)                         # rows need each plane contiguous
    w_pad = g.padded_w
    q = g.padded_h * w_pad - (g.k_w - 1)
    p = (g.h_out - 1) * w_pad + g.w_out
    w_taps = weight.permute(2, 0, 1, 3).reshape(g.k_h, g.c_out, g.c_in * g.k_w)  # [K_h, C_out, C_in*K_w]
    z = x.new_empty(g.output_shape)
    for images in image_blocks(g.n, g.c_in * g.k_w * q):
        rows = shifted_rows(x_pad[images], g.k_w, q)         # [n, C_in*K_w, Q], the one copy
        n = rows.shape[0]
        full = product_plus_bias(w_taps[0].expand(n, -1, -1), rows[:, :, :p], bias)      # [n, C_out, P]
        for i in range(1, g.k_h):
            full = full.baddbmm_(w_taps[i].expand(n, -1, -1), rows[:, :, i * w_pad:i * w_pad + p])
        z[images] = full.as_strided((n, g.c_out, g.h_out, g.w_out), (g.c_out * p, p, w_pad, 1))
    return z


def shifted_rows(x_pad, k_w: int, q: int):
    """x_pad [n, C, H_pad, W_pad] -> rows [n, C*k_w, q], rows[n][(c, j), t] = x_pad[n, c] flattened, at t + j."""
    n, c = x_pad.shape[:2]
    s_n, s_c = x_pad.stride()[:2]
    return x_pad.as_strided((n, c, k_w, q), (s_n, s_c, 1, 1)).reshape(n, c * k_w, q)


def conv2d_backward(grad_z, x, weight, g: Window, needs):
    """Gradients of z[n] = W_rows @ columns[n] + b, with delta = dL/dz [N, C_out, H_out*W_out]:

        dL/dW_rows      = sum_n delta[n] @ columns[n]^T     [C_out, C_in*K_h*K_w]
        dL/db           = sum_{n, m, l} delta[n, :, (m,l)]  [C_out]
        dL/dcolumns[n]  = W_rows^T @ delta[n]               [C_in*K_h*K_w, H_out*W_out]
        dL/da           = col2im(dL/dcolumns)               [N, C_in, H, W]  (a block of images at a time)

    the delta rule dL/dw[co,ci,i,j] = sum_{n,m,l} delta[n,co,m,l] a[n,ci,m*s+i*d-p,l*s+j*d-p] with
    im2col doing the index map, and dL/da sending each delta back through the same map. With groups, each
    product is taken group by group (the filters of group k meet its rows of the columns only).
    """
    needs_input, needs_weight, needs_bias = needs
    delta = grad_z.reshape(g.n, g.c_out, g.h_out * g.w_out)  # [N, C_out, L]
    grad_x = grad_w = grad_b = None
    if needs_weight:
        grad_w = delta.new_zeros((g.c_out, g.c_in // g.groups * g.k_h * g.k_w))
        for images, block in column_blocks(g):
            columns = im2col(x[images], block)               # [n, C_in*K_h*K_w, L], the one copy
            if g.groups == 1:
                # One batched product delta[n] @ columns[n]^T (the transpose is a stride, not a copy), then the
                # sum over n: cheaper than laying delta and columns out as [C_out, n*L] @ [n*L, C_in*K_h*K_w],
                # which costs two transposing copies for one GEMM.
                grad_w += torch.bmm(delta[images], columns.transpose(1, 2)).sum(dim=0)
            else:
                n, length = block.n, columns.shape[2]
                per_group = torch.matmul(delta[images].view(n, g.groups, -1, length),
                                         columns.view(n, g.groups, -1, length).transpose(2, 3))  # [n, G, C_out/G, D]
                grad_w += per_group.sum(dim=0).view(g.c_out, -1)
        grad_w = grad_w.reshape(g.weight_shape)
    if needs_bias:
        grad_b = delta.sum(dim=2).sum(dim=0)
    if needs_input:
        grad_x = delta.new_empty(g.input_shape)
        w_rows = weight.reshape(g.c_out, -1)                 # [C_out, C_in/G*K_h*K_w]
        for images, block in column_blocks(g):
            if g.groups == 1:
                grad_columns = torch.bmm(w_rows.t().expand(block.n, -1, -1), delta[images])  # [n, C_in*K_h*K_w, L]
            else:
                w_cols = w_rows.view(g.groups, -1, w_rows.shape[1]).transpose(1, 2)      # [G, D, C_out/G]
                grad_columns = grouped_product(w_cols.reshape(-1, w_cols.shape[2]), delta[images], g)
            grad_x[images] = col2im(grad_columns, block)
    return grad_x, grad_w, grad_b


conv2d = conv2d_op(Kernels(conv2d_forward, conv2d_backward))

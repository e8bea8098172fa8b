"""Windows of an image batch as matrix columns and back: a sibling module of layers.py, as the
course's package has one (here our own, used by the variant that imports it)."""
import numpy as np


def window_indices(shape, kh, kw, pad, stride):
    """Index arrays (channel, row, col), each (C * kh * kw, H' * W'), into x padded by pad."""
    _, c, h, w = shape
    out_h = 1 + (h + 2 * pad - kh) // stride
    out_w = 1 + (w + 2 * pad - kw) // stride
    channel = np.repeat(np.arange(c), kh * kw)[:, None]
    row = (np.tile(np.repeat(np.arange(kh), kw), c)[:, None]
           + stride * np.repeat(np.arange(out_h), out_w)[None, :])
    col = (np.tile(np.arange(kw), kh * c)[:, None]
           + stride * np.tile(np.arange(out_w), out_h)[None, :])
    return channel, row, col


def im2col(x, kh, kw, pad, stride):
    """x (N, C, H, W) -> columns (N, C * kh * kw, H' * W'), one column per window."""
    channel, row, col = window_indices(x.shape, kh, kw, pad, stride)
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return x_pad[:, channel, row, col]


def col2im(columns, shape, kh, kw, pad, stride):
    """The adjoint of im2col: columns (N, C * kh * kw, H' * W') summed back into (N, C, H, W)."""
    n, c, h, w = shape
    channel, row, col = window_indices(shape, kh, kw, pad, stride)
    x_pad = np.zeros((n, c, h + 2 * pad, w + 2 * pad), dtype=columns.dtype)
    np.add.at(x_pad, (slice(None), channel, row, col), columns)
    return x_pad[:, :, pad:pad + h, pad:pad + w]

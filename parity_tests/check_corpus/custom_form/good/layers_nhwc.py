"""An instructor's own layer API, the kind issue 20's example form maps onto the checker's ops
(written for the checker's tests): numpy arrays in NHWC order, scalar hyper-parameters as arguments,
kernels (KH, KW, C_in, C_out) and dense weights (inputs, outputs). Each forward returns (out, cache),
each backward takes (dout, cache).
"""
import numpy as np


def _windows(X, kh, kw, stride):
    """X (N, H, W, C) -> a view (N, H', W', kh, kw, C) of every kh x kw window, `stride` apart."""
    n, h, w, c = X.shape
    out_h, out_w = (h - kh) // stride + 1, (w - kw) // stride + 1
    s = X.strides
    return np.lib.stride_tricks.as_strided(
        X, (n, out_h, out_w, kh, kw, c), (s[0], stride * s[1], stride * s[2], s[1], s[2], s[3]), writeable=False)


def conv_forward(X, W, b, stride, pad):
    """X (N, H, W, C_in), W (KH, KW, C_in, C_out), b (C_out,) -> Y (N, H', W', C_out):
    Y[n, i, j, f] = sum over u, v, c of X_pad[n, i stride + u, j stride + v, c] W[u, v, c, f] + b[f]."""
    X_pad = np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    Y = np.einsum("nijuvc,uvcf->nijf", _windows(X_pad, W.shape[0], W.shape[1], stride), W) + b
    return Y, (X, W, stride, pad)


def conv_backward(dY, cache):
    """dY (N, H', W', C_out) -> dX, dW, db: every window's share dY[n, i, j, :] W^T added back onto it."""
    X, W, stride, pad = cache
    kh, kw = W.shape[:2]
    X_pad = np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dW = np.einsum("nijuvc,nijf->uvcf", _windows(X_pad, kh, kw, stride), dY)
    db = dY.sum(axis=(0, 1, 2))
    dX_pad = np.zeros(X_pad.shape)
    shares = np.einsum("nijf,uvcf->nijuvc", dY, W)
    for i in range(dY.shape[1]):
        for j in range(dY.shape[2]):
            dX_pad[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :] += shares[:, i, j]
    return dX_pad[:, pad:pad + X.shape[1], pad:pad + X.shape[2], :], dW, db


def maxpool_forward(X, size, stride):
    """Max over each size x size window of X (N, H, W, C), `stride` apart -> Y (N, H', W', C)."""
    return _windows(X, size, size, stride).max(axis=(3, 4)), (X, size, stride)


def maxpool_backward(dY, cache):
    """Each window's gradient to its first maximum (row-major), added where windows overlap."""
    X, size, stride = cache
    windows = _windows(X, size, size, stride)
    first = windows.reshape(windows.shape[:3] + (size * size, -1)).argmax(axis=3)      # (N, H', W', C)
    rows, cols = np.unravel_index(first, (size, size))
    n, i, j, c = np.indices(first.shape)
    dX = np.zeros(X.shape)
    np.add.at(dX, (n, i * stride + rows, j * stride + cols, c), dY)
    return dX


def dense_forward(X, W, b):
    """X (N, D), W (D, M), b (M,) -> Y = X W + b (N, M)."""
    return X @ W + b, (X, W)


def dense_backward(dY, cache):
    """-> dX = dY W^T, dW = X^T dY, db = dY summed over the batch."""
    X, W = cache
    return dY @ W.T, X.T @ dY, dY.sum(axis=0)


def relu_forward(X):
    return np.maximum(X, 0), X


def relu_backward(dY, cache):
    return dY * (cache > 0)

"""A complete, correct CS231n assignment-2 ``cs231n/layers.py`` (written for the checker's tests).

The 2018+ conventions: dropout's p is the probability of keeping a unit; batch norm's running
statistics are updated as ``running = momentum * running + (1 - momentum) * batch`` with the biased
batch variance; group norm takes gamma and beta either as (C,) or as (1, C, 1, 1) and returns their
gradients in the shape it was given. Losses are averaged over the N samples.

The convolution and max-pooling functions are the naive loops the assignment asks for (one output
position at a time, each window's sum vectorised). Every forward returns (out, cache); every backward
takes (dout, cache).
"""
from builtins import range
import numpy as np


def affine_forward(x, w, b):
    """x (N, d_1, ..., d_k), w (D, M), b (M,) -> out (N, M) = x as rows (N, D) @ w + b; cache (x, w, b)."""
    out = x.reshape(x.shape[0], -1) @ w + b
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """dout (N, M) -> dx (N, d_1, ..., d_k), dw (D, M), db (M,).

    out = X w + b with X the rows of x: dX = dout w^T, dw = X^T dout, db = sum of dout over the batch.
    """
    x, w, b = cache
    rows = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = rows.T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def relu_forward(x):
    """out = max(x, 0), any shape; cache x."""
    out = np.maximum(x, 0)
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """dx = dout where x > 0, else 0 (the derivative at 0 taken as 0, as PyTorch does)."""
    x = cache
    dx = dout * (x > 0)
    return dx


def softmax_loss(x, y):
    """Scores x (N, C), labels y (N,) -> (loss, dx): the mean over N of -log softmax(x_i)[y_i].

    The max of each row is subtracted before exp (the loss is unchanged, exp cannot overflow).
    dx = (softmax(x) - onehot(y)) / N.
    """
    n = x.shape[0]
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(n), y].mean()
    dx = np.exp(log_probs)
    dx[np.arange(n), y] -= 1
    dx /= n
    return loss, dx


def svm_loss(x, y):
    """Scores x (N, C), labels y (N,) -> (loss, dx): the multiclass hinge loss with margin 1.

    loss = (1/N) sum_i sum_{j != y_i} max(0, x_ij - x_iy_i + 1). Each positive margin adds 1/N to
    dx_ij and takes 1/N from dx_iy_i.
    """
    n = x.shape[0]
    correct = x[np.arange(n), y][:, None]
    margins = np.maximum(0, x - correct + 1.0)
    margins[np.arange(n), y] = 0
    loss = margins.sum() / n
    positive = (margins > 0).astype(x.dtype)
    positive[np.arange(n), y] = -positive.sum(axis=1)
    dx = positive / n
    return loss, dx


def _normalize_rows(rows, eps):
    """Each row of rows (R, D) shifted to mean 0 and scaled to variance 1 -> (x_hat, 1/std per row (R, 1))."""
    mean = rows.mean(axis=1, keepdims=True)
    inv_std = 1.0 / np.sqrt(rows.var(axis=1, keepdims=True) + eps)
    return (rows - mean) * inv_std, inv_std


def _normalize_rows_backward(dx_hat, x_hat, inv_std):
    """The gradient through _normalize_rows: the row means and variances depend on every entry, so

    d rows = inv_std * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)), means along each row.
    """
    return inv_std * (dx_hat - dx_hat.mean(axis=1, keepdims=True)
                      - x_hat * (dx_hat * x_hat).mean(axis=1, keepdims=True))


def batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation of x (N, D) per feature, gamma and beta (D,).

    bn_param: mode 'train' | 'test' (required), eps (1e-5), momentum (0.9), running_mean and
    running_var (D,) (zeros when absent; written back to bn_param). In training the batch's mean and
    biased variance normalise x, and the running statistics move towards them:
    running = momentum * running + (1 - momentum) * batch. In test mode the running statistics
    normalise x. Returns (out (N, D), cache); the cache is None in test mode.
    """
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    n, d = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(d, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(d, dtype=x.dtype))

    cache = None
    if mode == "train":
        mean = x.mean(axis=0)
        var = x.var(axis=0)
        std = np.sqrt(var + eps)
        x_hat = (x - mean) / std
        out = gamma * x_hat + beta
        running_mean = momentum * running_mean + (1 - momentum) * mean
        running_var = momentum * running_var + (1 - momentum) * var
        cache = (x, x_hat, mean, std, gamma)
    elif mode == "test":
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
    else:
        raise ValueError(f'Invalid forward batchnorm mode "{mode}"')

    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    """dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,), backwards through the computation graph:

    mean = sum(x)/N; centred = x - mean; var = sum(centred^2)/N; std = sqrt(var + eps);
    x_hat = centred / std; out = gamma x_hat + beta. Each node's gradient is the sum over the branches
    that use it (centred feeds both var and x_hat; x feeds both centred and mean).
    """
    x, x_hat, mean, std, gamma = cache
    n = x.shape[0]
    centred = x - mean
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx_hat = dout * gamma
    dstd = -(dx_hat * centred).sum(axis=0) / std ** 2
    dvar = dstd / (2 * std)
    dcentred = dx_hat / std + dvar * 2 * centred / n
    dmean = -dcentred.sum(axis=0)
    dx = dcentred + dmean / n
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """The same gradients from the simplified expression (the columns of x normalised as rows):

    dx = (1/std) * (dx_hat - mean(dx_hat) - x_hat * mean(dx_hat * x_hat)), means over the batch.
    """
    x, x_hat, mean, std, gamma = cache
    dbeta = dout.sum(axis=0)
    dgamma = (dout * x_hat).sum(axis=0)
    dx = _normalize_rows_backward((dout * gamma).T, x_hat.T, 1.0 / std[:, None]).T
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    """Layer normalisation of x (N, D) per sample, gamma and beta (D,); ln_param: eps (1e-5).

    The same in training and test: no running statistics.
    """
    eps = ln_param.get("eps", 1e-5)
    x_hat, inv_std = _normalize_rows(x, eps)
    out = gamma * x_hat + beta
    cache = (x_hat, inv_std, gamma)
    return out, cache


def layernorm_backward(dout, cache):
    """dout (N, D) -> dx (N, D), dgamma (D,), dbeta (D,)."""
    x_hat, inv_std, gamma = cache
    dgamma = (dout * x_hat).sum(axis=0)
    dbeta = dout.sum(axis=0)
    dx = _normalize_rows_backward(dout * gamma, x_hat, inv_std)
    return dx, dgamma, dbeta


def dropout_forward(x, dropout_param):
    """Inverted dropout. dropout_param: p, the probability of KEEPING a unit (2018+); mode 'train' |
    'test'; seed (optional, seeds numpy's generator for a repeatable mask).

    Training: each unit is kept with probability p and scaled by 1/p, so the expected output is x.
    Test: out = x. Returns (out, (dropout_param, mask)); the mask is None in test mode.
    """
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])

    mask = None
    if mode == "train":
        mask = (np.random.rand(*x.shape) < p) / p
        out = x * mask
    elif mode == "test":
        out = x
    else:
        raise ValueError(f'Invalid forward dropout mode "{mode}"')

    cache = (dropout_param, mask)
    out = out.astype(x.dtype, copy=False)
    return out, cache


def dropout_backward(dout, cache):
    """dx = dout * mask (the mask already holds the 1/p scale) in training, dout in test mode."""
    dropout_param, mask = cache
    if dropout_param["mode"] == "train":
        return dout * mask
    return dout


def conv_forward_naive(x, w, b, conv_param):
    """Cross-correlation of x (N, C, H, W) with F filters w (F, C, HH, WW), bias b (F,).

    conv_param: stride, pad (zeros, the same on every side). out (N, F, H', W') with
    H' = 1 + (H + 2 pad - HH) // stride, W' = 1 + (W + 2 pad - WW) // stride:
    out[n, f, i, j] = sum over c, u, v of x_pad[n, c, i stride + u, j stride + v] w[f, c, u, v] + b[f].
    """
    stride, pad = conv_param["stride"], conv_param["pad"]
    n_batch, _, height, width = x.shape
    n_filters, _, kh, kw = w.shape
    out_h = 1 + (height + 2 * pad - kh) // stride
    out_w = 1 + (width + 2 * pad - kw) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))

    out = np.zeros((n_batch, n_filters, out_h, out_w), dtype=x.dtype)
    for n in range(n_batch):
        for f in range(n_filters):
            for i in range(out_h):
                for j in range(out_w):
                    window = x_pad[n, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
                    out[n, f, i, j] = (window * w[f]).sum() + b[f]
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    """dout (N, F, H', W') -> dx (N, C, H, W), dw (F, C, HH, WW), db (F,).

    Each output entry out[n, f, i, j] received its window of x_pad times w[f]: its gradient flows back
    as dout[n, f, i, j] * w[f] into that window of dx_pad and dout[n, f, i, j] * window into dw[f];
    windows overlap, so the contributions add. The padding is cropped off dx_pad at the end.
    """
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    n_batch, _, height, width = x.shape
    n_filters, _, kh, kw = w.shape
    _, _, out_h, out_w = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))

    dx_pad = np.zeros_like(x_pad)
    dw = np.zeros_like(w)
    db = dout.sum(axis=(0, 2, 3))
    for n in range(n_batch):
        for f in range(n_filters):
            for i in range(out_h):
                for j in range(out_w):
                    rows = slice(i * stride, i * stride + kh)
                    cols = slice(j * stride, j * stride + kw)
                    dx_pad[n, :, rows, cols] += dout[n, f, i, j] * w[f]
                    dw[f] += dout[n, f, i, j] * x_pad[n, :, rows, cols]
    dx = dx_pad[:, :, pad:pad + height, pad:pad + width]
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    """Max over each pool_height x pool_width window of x (N, C, H, W), windows stride apart.

    pool_param: pool_height, pool_width, stride. out (N, C, H', W') with
    H' = 1 + (H - pool_height) // stride, W' = 1 + (W - pool_width) // stride; cache (x, pool_param).
    """
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n_batch, channels, height, width = x.shape
    out_h = 1 + (height - ph) // stride
    out_w = 1 + (width - pw) // stride

    out = np.zeros((n_batch, channels, out_h, out_w), dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]
            out[:, :, i, j] = window.max(axis=(2, 3))
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    """dout (N, C, H', W') -> dx (N, C, H, W): each window's gradient goes to its maximum alone (the
    first in row-major order when several entries tie, as PyTorch picks), and adds up where windows
    overlap."""
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n_batch, channels, out_h, out_w = dout.shape

    dx = np.zeros_like(x)
    for n in range(n_batch):
        for c in range(channels):
            for i in range(out_h):
                for j in range(out_w):
                    window = x[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw]
                    u, v = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + u, j * stride + v] += dout[n, c, i, j]
    return dx


def _channels_last(x):
    """(N, C, H, W) -> (N * H * W, C): one row per position, one column per channel."""
    return x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])


def _channels_first(rows, shape):
    """The inverse of _channels_last for an array of shape (N, C, H, W)."""
    n, c, h, w = shape
    return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """Batch normalisation of x (N, C, H, W) per channel, over the batch and every position;
    gamma and beta (C,); bn_param as for batchnorm_forward (running statistics (C,))."""
    out, cache = batchnorm_forward(_channels_last(x), gamma, beta, bn_param)
    return _channels_first(out, x.shape), cache


def spatial_batchnorm_backward(dout, cache):
    """dout (N, C, H, W) -> dx (N, C, H, W), dgamma (C,), dbeta (C,)."""
    dx, dgamma, dbeta = batchnorm_backward(_channels_last(dout), cache)
    return _channels_first(dx, dout.shape), dgamma, dbeta


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """Group normalisation of x (N, C, H, W): the C channels split into G groups of C // G, each
    sample's group normalised over its channels and positions; then a per-channel scale and shift.

    gamma and beta are (C,) (the 2018-20 docstring) or (1, C, 1, 1) (the notebook, and the docstring
    from 2021); gn_param: eps (1e-5).
    """
    eps = gn_param.get("eps", 1e-5)
    n, c = x.shape[:2]
    x_hat, inv_std = _normalize_rows(x.reshape(n * G, -1), eps)
    x_hat = x_hat.reshape(x.shape)
    out = gamma.reshape(1, c, 1, 1) * x_hat + beta.reshape(1, c, 1, 1)
    cache = (x_hat, inv_std, gamma, G)
    return out, cache


def spatial_groupnorm_backward(dout, cache):
    """dout (N, C, H, W) -> dx (N, C, H, W), dgamma and dbeta in the shape gamma was given in."""
    x_hat, inv_std, gamma, G = cache
    n, c = dout.shape[:2]
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3)).reshape(gamma.shape)
    dbeta = dout.sum(axis=(0, 2, 3)).reshape(gamma.shape)
    dx_hat = dout * gamma.reshape(1, c, 1, 1)
    dx = _normalize_rows_backward(dx_hat.reshape(n * G, -1), x_hat.reshape(n * G, -1), inv_std)
    return dx.reshape(dout.shape), dgamma, dbeta

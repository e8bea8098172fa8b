"""Batch normalisation as CUDA kernels (seed 001, question 2), on x folded to [N, C, L], as
``scalar_ops.batch_norm`` (which see). For each channel c, over its M = N*L values:

    mu[c]        = (1/M) sum_{n,l} x[n,c,l]
    sigma2[c]    = (1/M) sum_{n,l} (x[n,c,l] - mu[c])^2           (biased: used to normalise)
    x_hat[n,c,l] = (x[n,c,l] - mu[c]) / sqrt(sigma2[c] + eps)
    y[n,c,l]     = gamma[c] * x_hat[n,c,l] + beta[c]

One thread per channel for the statistics (mu, sigma2, the running statistics, 1/sqrt(sigma2
+ eps)) and for the per-channel sums of the backward pass; one thread per element for the
normalisation and for dL/dx. Training moves the running statistics in place:
running = (1 - momentum) * running + momentum * (mu, sigma2 * M / (M - 1)), as PyTorch does.
"""

import math

from numba import cuda

from scalar_ops.cuda import _device


@cuda.jit
def batch_statistics_kernel(x, mean, var):
    n_batch, channels, length = x.shape
    m = n_batch * length
    c = cuda.grid(1)
    if c >= channels:
        return
    s = x.dtype.type(0)
    for n in range(n_batch):
        for l in range(length):
            s += x[n, c, l]                                       # mu = (1/M) sum x
    mean[c] = s / m
    q = x.dtype.type(0)
    for n in range(n_batch):
        for l in range(length):
            q += (x[n, c, l] - mean[c]) * (x[n, c, l] - mean[c])  # sigma2 = (1/M) sum (x - mu)^2
    var[c] = q / m


@cuda.jit
def update_running_kernel(running_mean, running_var, mean, var, momentum, m):
    c = cuda.grid(1)
    if c >= mean.shape[0]:
        return
    running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean[c]
    running_var[c] = (1 - momentum) * running_var[c] + momentum * var[c] * m / (m - 1)   # unbiased var


@cuda.jit
def inverse_std_kernel(var, eps, inv_std):
    c = cuda.grid(1)
    if c >= var.shape[0]:
        return
    inv_std[c] = 1 / math.sqrt(var[c] + eps)                      # 1 / sqrt(sigma2 + eps)


@cuda.jit
def normalise_kernel(x, mean, inv_std, gamma, beta, x_hat, y):
    n_batch, channels, length = x.shape
    t = cuda.grid(1)
    if t >= n_batch * channels * length:
        return
    l = t % length
    c = t // length % channels
    n = t // (length * channels)
    scale = x.dtype.type(1) if gamma is None else gamma[c]
    shift = x.dtype.type(0) if beta is None else beta[c]
    x_hat[n, c, l] = (x[n, c, l] - mean[c]) * inv_std[c]          # x_hat = (x - mu) / sqrt(sigma2 + eps)
    y[n, c, l] = scale * x_hat[n, c, l] + shift                   # y = gamma x_hat + beta


@cuda.jit
def batch_norm_sums_kernel(delta, x_hat, dgamma, dbeta):
    n_batch, channels, length = delta.shape
    c = cuda.grid(1)
    if c >= channels:
        return
    sum_delta = delta.dtype.type(0)
    sum_delta_x_hat = delta.dtype.type(0)
    for n in range(n_batch):
        for l in range(length):
            sum_delta += delta[n, c, l]                           # dL/dbeta = sum delta
            sum_delta_x_hat += delta[n, c, l] * x_hat[n, c, l]    # dL/dgamma = sum delta x_hat
    dbeta[c] = sum_delta
    dgamma[c] = sum_delta_x_hat


@cuda.jit
def batch_norm_input_grad_kernel(delta, x_hat, inv_std, gamma, dgamma, dbeta, training, dx):
    n_batch, channels, length = delta.shape
    m = n_batch * length
    t = cuda.grid(1)
    if t >= n_batch * channels * length:
        return
    l = t % length
    c = t // length % channels
    n = t // (length * channels)
    scale = delta.dtype.type(1) if gamma is None else gamma[c]
    g = scale * delta[n, c, l]                                    # dL/dx_hat
    if training:
        g = g - scale * dbeta[c] / m - x_hat[n, c, l] * scale * dgamma[c] / m
    dx[n, c, l] = g * inv_std[c]


def batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps):
    a = _device.checked("batch_norm", "input", x)
    gamma = None if weight is None else _device.checked("batch_norm", "weight", weight)
    beta = None if bias is None else _device.checked("batch_norm", "bias", bias)
    channels = a.shape[1]
    if training:
        mean, var = _device.empty((channels,), a.dtype, a), _device.empty((channels,), a.dtype, a)
        _device.launch(batch_statistics_kernel, channels, a, mean, var)
        if running_mean is not None and a.shape[0] * a.shape[2] > 0:      # (an empty batch moves nothing)
            # Updated in place: the kernel gets the module's own buffers, not contiguous copies.
            _device.checked("batch_norm", "running_mean", running_mean)
            _device.checked("batch_norm", "running_var", running_var)
            _device.launch(update_running_kernel, channels, running_mean, running_var, mean, var,
                           momentum, a.shape[0] * a.shape[2])
    else:
        mean = _device.checked("batch_norm", "running_mean", running_mean)
        var = _device.checked("batch_norm", "running_var", running_var)
    inv_std = _device.empty((channels,), a.dtype, a)
    _device.launch(inverse_std_kernel, channels, var, eps, inv_std)
    x_hat, y = _device.empty(a.shape, a.dtype, a), _device.empty(a.shape, a.dtype, a)
    _device.launch(normalise_kernel, a.numel(), a, mean, inv_std, gamma, beta, x_hat, y)
    return y, x_hat, inv_std


def batch_norm_backward(grad_y, x_hat, inv_std, weight, training, needs):
    """The delta rule of ``scalar_ops.batch_norm.batch_norm_backward``, with g = gamma * delta:

        dL/dgamma[c] = sum_{n,l} delta[n,c,l] * x_hat[n,c,l]        dL/dbeta[c] = sum_{n,l} delta[n,c,l]
        eval:      dL/dx[n,c,l] = g[n,c,l] * inv_std[c]
        training:  dL/dx[n,c,l] = inv_std[c] * (g[n,c,l] - (1/M) sum g - x_hat[n,c,l] (1/M) sum g x_hat)

    One thread per channel computes the two sums (sum g = gamma dL/dbeta, sum g x_hat =
    gamma dL/dgamma), then one thread per element computes dL/dx from them.
    """
    needs_input, needs_weight, needs_bias = needs
    delta = _device.checked("batch_norm", "grad_output", grad_y)
    x_hat = _device.checked("batch_norm", "x_hat", x_hat)
    inv_std = _device.checked("batch_norm", "inv_std", inv_std)
    gamma = None if weight is None else _device.checked("batch_norm", "weight", weight)
    channels = delta.shape[1]
    dgamma, dbeta = _device.empty((channels,), delta.dtype, delta), _device.empty((channels,), delta.dtype, delta)
    _device.launch(batch_norm_sums_kernel, channels, delta, x_hat, dgamma, dbeta)
    dx = None
    if needs_input:
        dx = _device.empty(delta.shape, delta.dtype, delta)
        _device.launch(batch_norm_input_grad_kernel, dx.numel(), delta, x_hat, inv_std, gamma, dgamma, dbeta,
                       training, dx)
    return dx, dgamma if needs_weight else None, dbeta if needs_bias else None

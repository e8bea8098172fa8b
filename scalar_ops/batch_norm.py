"""Batch normalisation as literal loops (seed 001, question 2), on x folded to [N, C, L], 0-based.

For each channel c, over its M = N*L values x[n, c, l]:

    mu[c]        = (1/M) sum_{n,l} x[n,c,l]
    sigma2[c]    = (1/M) sum_{n,l} (x[n,c,l] - mu[c])^2           (biased: used to normalise)
    x_hat[n,c,l] = (x[n,c,l] - mu[c]) / sqrt(sigma2[c] + eps)
    y[n,c,l]     = gamma[c] * x_hat[n,c,l] + beta[c]

In eval mode mu and sigma2 are the running statistics. Training moves those, in place:
running = (1 - momentum) * running + momentum * (mu, sigma2 * M / (M - 1)), as PyTorch does
(any real momentum; none for an empty batch).
Channels own their values, so the loops run in parallel over c.
"""

import math

import numpy as np

from scalar_ops._dispatch import registered
from scalar_ops._numba import as_array, as_tensor, jit, prange
from simple_conv_net.functions import Kernels, batch_norm_op


@jit(fastmath=True)
def batch_norm_forward_loops(x, running_mean, running_var, gamma, beta, training, momentum, eps, x_hat, y, inv_std):
    n_batch, channels, length = x.shape
    m = n_batch * length
    # One pass per channel does it all (statistics, running update, normalisation): one launch of the
    # threads instead of three, which is most of the time at small sizes.
    for c in prange(channels):
        mean = x.dtype.type(0)
        var = x.dtype.type(0)
        if training:
            s = x.dtype.type(0)
            for n in range(n_batch):
                for l in range(length):
                    s += x[n, c, l]                                   # mu = (1/M) sum x
            mean = s / m
            q = x.dtype.type(0)
            for n in range(n_batch):
                for l in range(length):
                    q += (x[n, c, l] - mean) * (x[n, c, l] - mean)    # sigma2 = (1/M) sum (x - mu)^2
            var = q / m
            if running_mean is not None and m > 0:                   # (an empty batch moves nothing)
                running_mean[c] = (1 - momentum) * running_mean[c] + momentum * mean
                running_var[c] = (1 - momentum) * running_var[c] + momentum * var * m / (m - 1)
        elif running_mean is not None:                                # eval: the running statistics
            mean = running_mean[c]
            var = running_var[c]
        inv_std[c] = 1 / math.sqrt(var + eps)
        scale = x.dtype.type(1) if gamma is None else gamma[c]
        shift = x.dtype.type(0) if beta is None else beta[c]
        for n in range(n_batch):
            for l in range(length):
                x_hat[n, c, l] = (x[n, c, l] - mean) * inv_std[c]     # x_hat = (x - mu) / sqrt(sigma2 + eps)
                y[n, c, l] = scale * x_hat[n, c, l] + shift            # y = gamma x_hat + beta


@jit(fastmath=True)
def batch_norm_backward_loops(delta, x_hat, inv_std, gamma, training, dx, dgamma, dbeta):
    n_batch, channels, length = delta.shape
    m = n_batch * length
    for c in prange(channels):
        sum_delta = delta.dtype.type(0)
        sum_delta_x_hat = delta.dtype.type(0)
        for n in range(n_batch):
            for l in range(length):
                sum_delta += delta[n, c, l]                           # dL/dbeta = sum delta
                sum_delta_x_hat += delta[n, c, l] * x_hat[n, c, l]    # dL/dgamma = sum delta x_hat
        dbeta[c] = sum_delta
        dgamma[c] = sum_delta_x_hat
        scale = delta.dtype.type(1) if gamma is None else gamma[c]
        for n in range(n_batch):
            for l in range(length):
                g = scale * delta[n, c, l]                            # dL/dx_hat
                if training:
                    g = g - scale * sum_delta / m - x_hat[n, c, l] * scale * sum_delta_x_hat / m
                dx[n, c, l] = g * inv_std[c]


def batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps):
    a = as_array("batch_norm", "input", x)
    gamma = None if weight is None else as_array("batch_norm", "weight", weight)
    beta = None if bias is None else as_array("batch_norm", "bias", bias)
    # The running statistics are updated in place, so they must be the module's own memory.
    mean = None if running_mean is None else running_mean.detach().numpy()
    var = None if running_var is None else running_var.detach().numpy()
    x_hat, y, inv_std = np.empty_like(a), np.empty_like(a), np.empty(a.shape[1], a.dtype)
    batch_norm_forward_loops(a, mean, var, gamma, beta, training, momentum, eps, x_hat, y, inv_std)
    return as_tensor(y), as_tensor(x_hat), as_tensor(inv_std)


def batch_norm_backward(grad_y, x_hat, inv_std, weight, training, needs):
    """The delta rule per channel, with delta = dL/dy and g = gamma * delta = dL/dx_hat:

        dL/dgamma[c] = sum_{n,l} delta[n,c,l] * x_hat[n,c,l]        dL/dbeta[c] = sum_{n,l} delta[n,c,l]
        eval:      dL/dx[n,c,l] = g[n,c,l] * inv_std[c]              (mu, sigma2 are constants)
        training:  dL/dx[n,c,l] = inv_std[c] * (g[n,c,l] - (1/M) sum g - x_hat[n,c,l] (1/M) sum g x_hat)

    since x_hat depends on every x of its channel through mu and sigma2:
    dx_hat[i]/dx[j] = inv_std * ([i = j] - 1/M - x_hat[i] x_hat[j] / M). Here sum g = gamma dL/dbeta
    and sum g x_hat = gamma dL/dgamma, so one pass of sums serves all three gradients.
    """
    needs_input, needs_weight, needs_bias = needs
    delta = as_array("batch_norm", "grad_output", grad_y)
    gamma = None if weight is None else as_array("batch_norm", "weight", weight)
    channels = delta.shape[1]
    dx, dgamma, dbeta = np.empty_like(delta), np.empty(channels, delta.dtype), np.empty(channels, delta.dtype)
    batch_norm_backward_loops(delta, as_array("batch_norm", "x_hat", x_hat), as_array("batch_norm", "inv_std", inv_std),
                              gamma, training, dx, dgamma, dbeta)
    return (as_tensor(dx) if needs_input else None, as_tensor(dgamma) if needs_weight else None,
            as_tensor(dbeta) if needs_bias else None)


batch_norm = batch_norm_op(registered(Kernels(batch_norm_forward, batch_norm_backward)))

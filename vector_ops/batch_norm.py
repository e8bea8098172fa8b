"""Batch normalisation per channel (seed 001, question 2), on x folded to [N, C, L].

    mean   [C]          = (1/M) sum over n, l of x[n, c, l]               M = N*L values per channel
    var    [C]          = (1/M) sum over n, l of (x - mean)^2             (biased: used to normalise)
    x_hat  [N, C, L]    = (x - mean) * inv_std,   inv_std = 1 / sqrt(var + eps)
    y      [N, C, L]    = gamma[c] * x_hat + beta[c]

In eval mode mean and var are the running statistics. Training moves them, in place:
running = (1 - momentum) * running + momentum * batch statistic, with the unbiased
variance var * M / (M - 1), as PyTorch does.
"""

import torch

from simple_conv_net.functions import Kernels, batch_norm_op


def batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps):
    if training:
        m = x.shape[0] * x.shape[2]
        mean = x.mean(dim=(0, 2))                                     # [C]
        var = ((x - mean[:, None]) ** 2).mean(dim=(0, 2))             # [C], biased
        if running_mean is not None:
            running_mean.mul_(1 - momentum).add_(momentum * mean)
            running_var.mul_(1 - momentum).add_(momentum * var * (m / (m - 1)))
    else:
        mean, var = running_mean, running_var
    inv_std = torch.rsqrt(var + eps)                                  # [C]
    x_hat = (x - mean[:, None]) * inv_std[:, None]                    # [N, C, L]
    y = x_hat if weight is None else x_hat * weight[:, None]
    if bias is not None:
        y = y + bias[:, None]
    return y, x_hat, inv_std


def batch_norm_backward(grad_y, x_hat, inv_std, weight, training, needs):
    """With delta = dL/dy [N, C, L] and g = delta * gamma (= dL/dx_hat), per channel over its M values:

        dL/dgamma = sum delta * x_hat        dL/dbeta = sum delta
        eval:     dL/dx = g * inv_std        (mean and var are constants)
        training: dL/dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))

    the training form because mean and var depend on every x of the channel:
    dx_hat[i]/dx[j] = inv_std * ([i = j] - 1/M - x_hat[i] x_hat[j] / M).
    """
    needs_input, needs_weight, needs_bias = needs
    grad_x = grad_w = grad_b = None
    if needs_weight:
        grad_w = (grad_y * x_hat).sum(dim=(0, 2))
    if needs_bias:
        grad_b = grad_y.sum(dim=(0, 2))
    if needs_input:
        g = grad_y if weight is None else grad_y * weight[:, None]    # [N, C, L]
        if training:
            g = g - g.mean(dim=(0, 2), keepdim=True) - x_hat * (g * x_hat).mean(dim=(0, 2), keepdim=True)
        grad_x = g * inv_std[:, None]
    return grad_x, grad_w, grad_b


batch_norm = batch_norm_op(Kernels(batch_norm_forward, batch_norm_backward))

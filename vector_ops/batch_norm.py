"""Batch normalisation per channel (seed 001, question 2), on x folded to [N, C, L].

    mean   [C]          = (1/M) sum over n, l of x[n, c, l]               M = N*L values per channel
    var    [C]          = (1/M) sum over n, l of (x - mean)^2             (biased: used to normalise)
    x_hat  [N, C, L]    = (x - mean) * inv_std,   inv_std = 1 / sqrt(var + eps)
    y      [N, C, L]    = gamma[c] * x_hat + beta[c]

In eval mode mean and var are the running statistics. Training moves them, in place:
running = (1 - momentum) * running + momentum * batch statistic, with the unbiased
variance var * M / (M - 1), as PyTorch does (any real momentum; none for an empty batch).
"""

import torch

from simple_conv_net.functions import Kernels, batch_norm_op


def batch_norm_forward(x, running_mean, running_var, weight, bias, training, momentum, eps):
    if training:
        m = x.shape[0] * x.shape[2]
        mean = x.mean(dim=(0, 2))                                     # [C]
        centered = x - mean[:, None]                                  # [N, C, L]
        var = centered.square().mean(dim=(0, 2))                      # [C], biased
        if running_mean is not None and m > 0:                        # (an empty batch moves nothing)
            # (1 - momentum) * running + momentum * statistic, as PyTorch writes it (not lerp_, which for a
            # momentum >= 0.5 takes statistic - (statistic - running) * (1 - momentum): inf - inf is NaN)
            running_mean.mul_(1 - momentum).add_(mean, alpha=momentum)
            running_var.mul_(1 - momentum).add_(var * (m / (m - 1)), alpha=momentum)   # the unbiased var
    else:
        mean, var = running_mean, running_var
        centered = x - mean[:, None]
    inv_std = torch.rsqrt(var + eps)                                  # [C]
    # In place on our own temporaries (here and below): each new [N, C, L] buffer costs a pass of page
    # faults when the allocator has handed its memory back to the system.
    x_hat = centered.mul_(inv_std[:, None])                           # [N, C, L]
    if weight is None:
        y = x_hat if bias is None else x_hat + bias[:, None]
    else:
        y = x_hat * weight[:, None] if bias is None else torch.addcmul(bias[:, None], x_hat, weight[:, None])
    return y, x_hat, inv_std


def batch_norm_backward(grad_y, x_hat, inv_std, weight, training, needs):
    """With delta = dL/dy [N, C, L] and g = delta * gamma (= dL/dx_hat), per channel over its M values:

        dL/dgamma = sum delta * x_hat        dL/dbeta = sum delta
        eval:     dL/dx = g * inv_std        (mean and var are constants)
        training: dL/dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat))

    the training form because mean and var depend on every x of the channel:
    dx_hat[i]/dx[j] = inv_std * ([i = j] - 1/M - x_hat[i] x_hat[j] / M). Since mean(g) = gamma * dL/dbeta / M
    and mean(g * x_hat) = gamma * dL/dgamma / M, the two sums serve all three gradients:

        dL/dx = gamma * inv_std * (delta - (dL/dbeta + x_hat * dL/dgamma) / M)     [N, C, L]
    """
    needs_input, needs_weight, needs_bias = needs
    scale = inv_std if weight is None else inv_std * weight           # [C]: gamma * inv_std
    grad_x = None
    if training and needs_input or needs_weight:
        sum_delta_x_hat = (grad_y * x_hat).sum(dim=(0, 2))            # [C]: dL/dgamma
    if training and needs_input or needs_bias:
        sum_delta = grad_y.sum(dim=(0, 2))                            # [C]: dL/dbeta
    if needs_input:
        if training:
            m = grad_y.shape[0] * grad_y.shape[2]
            mean_part = torch.addcmul((sum_delta / m)[:, None], x_hat, (sum_delta_x_hat / m)[:, None])  # [N, C, L]
            grad_x = torch.sub(grad_y, mean_part, out=mean_part).mul_(scale[:, None])
        else:
            grad_x = grad_y * scale[:, None]
    return grad_x, sum_delta_x_hat if needs_weight else None, sum_delta if needs_bias else None


batch_norm = batch_norm_op(Kernels(batch_norm_forward, batch_norm_backward))

"""Negative log-likelihood of the target classes: L = -(1/N) sum_n y[n, t_n] for 'mean'.

Together with log_softmax this is the softmax cross-entropy whose output delta is the
homework's eq. 6: dL/dz[n, k] = (softmax(z)[n, k] - onehot(t_n)[k]) / N.
"""

from simple_conv_net.functions import Kernels, nll_loss_op


def nll_loss_forward(y, target, reduction):
    picked = y.gather(1, target[:, None])[:, 0]                     # [N]: y[n, t_n]
    if reduction == "none":
        return -picked
    total = picked.neg().sum()                                      # of an empty batch: 0, not -0
    return total / y.shape[0] if reduction == "mean" else total


def nll_loss_backward(grad_loss, target, input_shape, reduction):
    """dL/dy[n, c] = -[c = t_n] * g_n, with g_n = g/N ('mean'), g ('sum') or g[n] ('none')."""
    n = input_shape[0]
    scale = grad_loss / n if reduction == "mean" else grad_loss
    g = (-scale).reshape(-1, 1).expand(n, 1)                         # [N, 1]: -g_n
    return grad_loss.new_zeros(input_shape).scatter_(1, target[:, None], g)


nll_loss = nll_loss_op(Kernels(nll_loss_forward, nll_loss_backward))

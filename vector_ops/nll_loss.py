"""Negative log-likelihood of the target classes, on x folded to [N, C, L] (L positions per sample):

    w_t     [N, L]   = weight[t[n, l]] (1 without weights), 0 where t[n, l] = ignore_index
    loss    [N, L]   = -w_t * y[n, t[n, l], l]                                             'none'
    L                = sum loss ('sum'), sum loss / sum w_t ('mean': the weighted mean)

For the homework's [N, C] input (L = 1, no weights, no ignored target) 'mean' is -(1/N) sum_n y[n, t_n];
together with log_softmax this is the softmax cross-entropy whose output delta is the homework's eq. 6:
dL/dz[n, k] = (softmax(z)[n, k] - onehot(t_n)[k]) / N.
"""

import torch

from simple_conv_net.functions import Kernels, nll_loss_op


def target_weights(target, weight, ignore_index):
    """Where the target is not ignore_index (kept, bool [N, L]); the class each position picks, an ignored one
    replaced by class 0 (any class would do: it is masked out); and w_t [N, L], None without weights (all 1)."""
    kept = target != ignore_index
    picked = target * kept
    return kept, picked, None if weight is None else weight[picked] * kept


def nll_loss_forward(y, target, weight, ignore_index, reduction):
    kept, picked, w_t = target_weights(target, weight, ignore_index)
    y_t = y.gather(1, picked[:, None, :])[:, 0, :]                  # [N, L]: y[n, t, l]
    # [N, L]: -w_t y[n, t, l], and 0 where the target is ignored (whatever y holds there: inf * 0 is NaN)
    loss = torch.where(kept, (y_t if w_t is None else y_t.mul_(w_t)).neg_(), 0.0)
    if reduction == "none":
        return loss
    total = loss.sum()                                               # of no positions: 0, not -0
    return total / (kept.sum() if w_t is None else w_t.sum()) if reduction == "mean" else total


def nll_loss_backward(grad_loss, target, weight, input_shape, ignore_index, reduction):
    """dL/dy[n, c, l] = -[c = t[n, l]] * w_t[n, l] * g_nl, with g_nl = g / sum w_t ('mean'), g ('sum') or
    g[n, l] ('none'): the loss holds y[n, t, l] once, with slope -w_t (times 1/sum w_t for the mean), and an
    ignored target not at all."""
    kept, picked, w_t = target_weights(target, weight, ignore_index)
    scale = grad_loss / (kept.sum() if w_t is None else w_t.sum()) if reduction == "mean" else grad_loss
    g = torch.where(kept, (-scale if w_t is None else w_t * scale.neg()), 0.0)   # [N, L]: -w_t g_nl
    return grad_loss.new_zeros(input_shape).scatter_(1, picked[:, None, :], g.expand(kept.shape)[:, None, :])


nll_loss = nll_loss_op(Kernels(nll_loss_forward, nll_loss_backward))

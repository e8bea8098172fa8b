"""Log-softmax along the rows of a matrix, shifted by the row maximum for stability.

    x [R, C]  ->  y = (x - max_c x) - log(sum_c exp(x - max_c x))   [R, C]
"""

from simple_conv_net.functions import Kernels, log_softmax_op


def log_softmax_forward(x):
    if x.shape[1] == 0:                                      # rows of no classes: nothing to normalise
        return x.clone()
    shifted = x - x.amax(dim=1, keepdim=True)                # [R, C]
    return shifted - shifted.exp().sum(dim=1, keepdim=True).log()


def log_softmax_backward(grad_y, y):
    """dy[r,k]/dx[r,c] = [k = c] - softmax[r,c], so dL/dx[r,c] = g[r,c] - exp(y[r,c]) * sum_k g[r,k]."""
    return grad_y - y.exp() * grad_y.sum(dim=1, keepdim=True)


log_softmax = log_softmax_op(Kernels(log_softmax_forward, log_softmax_backward))

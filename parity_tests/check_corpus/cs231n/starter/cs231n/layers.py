"""An untouched CS231n layers.py as handed out from 2021 on (written for the checker's tests from the
handout's names, argument lists and return statements; the TODO text is ours, not the course's).

Every TODO is `pass`, so each function returns what its surrounding lines set: None for every output
and gradient, the cache the handout builds for you (affine, relu, conv, pooling), and batch norm's
running statistics written back unchanged. dropout_forward does not return at all: the handout's own
line `out = out.astype(x.dtype, copy=False)` after the TODO raises AttributeError on out = None.
There is no svm_loss in these years; softmax_loss is a TODO (copied from assignment 1).
"""
from builtins import range
import numpy as np


def affine_forward(x, w, b):
    """Fully connected layer: x (N, d_1, ..., d_k), w (D, M), b (M,) -> (out (N, M), cache)."""
    out = None
    # TODO (from assignment 1): reshape x into rows and store x w + b in out.
    pass
    cache = (x, w, b)
    return out, cache


def affine_backward(dout, cache):
    """-> dx, dw, db."""
    x, w, b = cache
    dx, dw, db = None, None, None
    # TODO (from assignment 1): the three gradients of the affine layer.
    pass
    return dx, dw, db


def relu_forward(x):
    """-> (out, cache)."""
    out = None
    # TODO (from assignment 1): the ReLU.
    pass
    cache = x
    return out, cache


def relu_backward(dout, cache):
    """-> dx."""
    dx, x = None, cache
    # TODO (from assignment 1): the ReLU's gradient.
    pass
    return dx


def softmax_loss(x, y):
    """-> (loss, dx)."""
    loss, dx = None, None
    # TODO (from assignment 1): the softmax loss averaged over the batch, and its gradient.
    pass
    return loss, dx


def batchnorm_forward(x, gamma, beta, bn_param):
    """-> (out, cache); writes running_mean and running_var back into bn_param."""
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)

    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(D, dtype=x.dtype))

    out, cache = None, None
    if mode == "train":
        # TODO: normalise with the batch statistics, scale and shift, keep what the backward needs in
        # cache, and move the running statistics towards the batch's with momentum.
        pass
    elif mode == "test":
        # TODO: normalise with the running statistics, then scale and shift.
        pass
    else:
        raise ValueError('Invalid forward batchnorm mode "%s"' % mode)

    bn_param["running_mean"] = running_mean
    bn_param["running_var"] = running_var
    return out, cache


def batchnorm_backward(dout, cache):
    """-> dx, dgamma, dbeta, through the computation graph."""
    dx, dgamma, dbeta = None, None, None
    # TODO: backpropagate through each node of batch normalisation.
    pass
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout, cache):
    """-> dx, dgamma, dbeta, from a simplified expression."""
    dx, dgamma, dbeta = None, None, None
    # TODO: the same gradients, simplified on paper first.
    pass
    return dx, dgamma, dbeta


def layernorm_forward(x, gamma, beta, ln_param):
    """-> (out, cache)."""
    out, cache = None, None
    eps = ln_param.get("eps", 1e-5)
    # TODO: normalise each sample over its features, then scale and shift.
    pass
    return out, cache


def layernorm_backward(dout, cache):
    """-> dx, dgamma, dbeta."""
    dx, dgamma, dbeta = None, None, None
    # TODO: the layer norm gradients.
    pass
    return dx, dgamma, dbeta


def dropout_forward(x, dropout_param):
    """-> (out, cache); p is the probability of keeping a unit."""
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])

    mask = None
    out = None

    if mode == "train":
        # TODO: inverted dropout; keep the mask.
        pass
    elif mode == "test":
        # TODO: dropout at test time.
        pass

    cache = (dropout_param, mask)
    out = out.astype(x.dtype, copy=False)
    return out, cache


def dropout_backward(dout, cache):
    """-> dx."""
    dropout_param, mask = cache
    mode = dropout_param["mode"]

    dx = None
    if mode == "train":
        # TODO: the gradient of inverted dropout.
        pass
    elif mode == "test":
        dx = dout
    return dx


def conv_forward_naive(x, w, b, conv_param):
    """-> (out, cache)."""
    out = None
    # TODO: the convolution, with loops; np.pad pads the input.
    pass
    cache = (x, w, b, conv_param)
    return out, cache


def conv_backward_naive(dout, cache):
    """-> dx, dw, db."""
    dx, dw, db = None, None, None
    # TODO: the convolution's gradients.
    pass
    return dx, dw, db


def max_pool_forward_naive(x, pool_param):
    """-> (out, cache)."""
    out = None
    # TODO: max pooling, with loops.
    pass
    cache = (x, pool_param)
    return out, cache


def max_pool_backward_naive(dout, cache):
    """-> dx."""
    dx = None
    # TODO: max pooling's gradient.
    pass
    return dx


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    """-> (out, cache)."""
    out, cache = None, None
    # TODO: batch normalisation per channel, by reshaping for batchnorm_forward.
    pass
    return out, cache


def spatial_batchnorm_backward(dout, cache):
    """-> dx, dgamma, dbeta."""
    dx, dgamma, dbeta = None, None, None
    # TODO: its gradients, through batchnorm_backward.
    pass
    return dx, dgamma, dbeta


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    """-> (out, cache); gamma and beta (1, C, 1, 1)."""
    out, cache = None, None
    eps = gn_param.get("eps", 1e-5)
    # TODO: normalise each sample's G groups of channels, then scale and shift per channel.
    pass
    return out, cache


def spatial_groupnorm_backward(dout, cache):
    """-> dx, dgamma, dbeta."""
    dx, dgamma, dbeta = None, None, None
    # TODO: the group norm gradients.
    pass
    return dx, dgamma, dbeta

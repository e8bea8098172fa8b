"""batchnorm_forward keeps its intermediates in a dict, which both backward passes read by key (right)."""

_tuple_batchnorm_forward = batchnorm_forward
_tuple_batchnorm_backward = batchnorm_backward
_tuple_batchnorm_backward_alt = batchnorm_backward_alt
_CACHE_KEYS = ("x", "x_hat", "mean", "std", "gamma")


def batchnorm_forward(x, gamma, beta, bn_param):
    out, cache = _tuple_batchnorm_forward(x, gamma, beta, bn_param)
    return out, None if cache is None else dict(zip(_CACHE_KEYS, cache))


def batchnorm_backward(dout, cache):
    return _tuple_batchnorm_backward(dout, tuple(cache[key] for key in _CACHE_KEYS))


def batchnorm_backward_alt(dout, cache):
    return _tuple_batchnorm_backward_alt(dout, tuple(cache[key] for key in _CACHE_KEYS))

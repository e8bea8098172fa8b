"""max_pool_forward_naive takes an extra keyword argument with a default, verbose=False (right)."""

_plain_max_pool_forward = max_pool_forward_naive


def max_pool_forward_naive(x, pool_param, verbose=False):
    out, cache = _plain_max_pool_forward(x, pool_param)
    if verbose:
        print("max pool:", x.shape, "->", out.shape)
    return out, cache

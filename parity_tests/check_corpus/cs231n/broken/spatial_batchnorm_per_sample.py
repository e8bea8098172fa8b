"""spatial_batchnorm_forward normalises each sample's channel over its own positions (axes 2, 3: instance
norm) instead of each channel over the batch and the positions (axes 0, 2, 3). The backward is the right
one for that forward; the running statistics and test mode are right."""


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    out, cache = batchnorm_forward(_channels_last(x), gamma, beta, bn_param)
    if bn_param["mode"] == "test":
        return _channels_first(out, x.shape), cache
    n, c, h, w = x.shape
    x_hat, inv_std = _normalize_rows(x.reshape(n * c, h * w), bn_param.get("eps", 1e-5))
    x_hat = x_hat.reshape(x.shape)
    return gamma.reshape(1, c, 1, 1) * x_hat + beta.reshape(1, c, 1, 1), (x_hat, inv_std, gamma)


def spatial_batchnorm_backward(dout, cache):
    x_hat, inv_std, gamma = cache
    n, c, h, w = dout.shape
    dx_hat = (dout * gamma.reshape(1, c, 1, 1)).reshape(n * c, h * w)
    dx = _normalize_rows_backward(dx_hat, x_hat.reshape(n * c, h * w), inv_std).reshape(dout.shape)
    return dx, (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))

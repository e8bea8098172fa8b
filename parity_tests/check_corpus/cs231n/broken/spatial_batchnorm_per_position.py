"""spatial_batchnorm_forward normalises each (channel, row, column) position over the batch alone
(axis 0) instead of each channel over the batch and the positions (axes 0, 2, 3). The backward is the
right one for that forward; the running statistics and test mode are right."""


def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    out, cache = batchnorm_forward(_channels_last(x), gamma, beta, bn_param)
    if bn_param["mode"] == "test":
        return _channels_first(out, x.shape), cache
    n, c = x.shape[:2]
    x_hat, inv_std = _normalize_rows(x.reshape(n, -1).T, bn_param.get("eps", 1e-5))
    x_hat = x_hat.T.reshape(x.shape)
    return gamma.reshape(1, c, 1, 1) * x_hat + beta.reshape(1, c, 1, 1), (x_hat, inv_std, gamma)


def spatial_batchnorm_backward(dout, cache):
    x_hat, inv_std, gamma = cache
    n, c = dout.shape[:2]
    dx_hat = (dout * gamma.reshape(1, c, 1, 1)).reshape(n, -1).T
    dx = _normalize_rows_backward(dx_hat, x_hat.reshape(n, -1).T, inv_std).T.reshape(dout.shape)
    return dx, (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))

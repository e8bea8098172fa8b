"""spatial_groupnorm_forward written for gamma and beta of shape (C,), as the 2018-20 docstring has them:
it indexes gamma[None, :, None, None], so it needs that shape; dgamma and dbeta (C,) (right)."""


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    n = x.shape[0]
    x_hat, inv_std = _normalize_rows(x.reshape(n * G, -1), gn_param.get("eps", 1e-5))
    x_hat = x_hat.reshape(x.shape)
    return gamma[None, :, None, None] * x_hat + beta[None, :, None, None], (x_hat, inv_std, gamma, G)


def spatial_groupnorm_backward(dout, cache):
    x_hat, inv_std, gamma, G = cache
    n = dout.shape[0]
    dx_hat = dout * gamma[None, :, None, None]
    dx = _normalize_rows_backward(dx_hat.reshape(n * G, -1), x_hat.reshape(n * G, -1), inv_std)
    return dx.reshape(dout.shape), (dout * x_hat).sum(axis=(0, 2, 3)), dout.sum(axis=(0, 2, 3))

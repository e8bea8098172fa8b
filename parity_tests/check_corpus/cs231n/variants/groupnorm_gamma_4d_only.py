"""spatial_groupnorm_forward written for the notebook's gamma and beta of shape (1, C, 1, 1), as the 2021+
docstring has them: it broadcasts them as given, so it needs that shape; dgamma and dbeta (1, C, 1, 1)
(right)."""


def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    n = x.shape[0]
    x_hat, inv_std = _normalize_rows(x.reshape(n * G, -1), gn_param.get("eps", 1e-5))
    x_hat = x_hat.reshape(x.shape)
    return gamma * x_hat + beta, (x_hat, inv_std, gamma, G)


def spatial_groupnorm_backward(dout, cache):
    x_hat, inv_std, gamma, G = cache
    n = dout.shape[0]
    dgamma = (dout * x_hat).sum(axis=(0, 2, 3), keepdims=True)
    dbeta = dout.sum(axis=(0, 2, 3), keepdims=True)
    dx = _normalize_rows_backward((dout * gamma).reshape(n * G, -1), x_hat.reshape(n * G, -1), inv_std)
    return dx.reshape(dout.shape), dgamma, dbeta

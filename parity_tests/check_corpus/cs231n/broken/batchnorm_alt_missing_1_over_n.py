"""batchnorm_backward_alt sums the batch terms where it should average them: dx with a missing 1/N
(dgamma and dbeta right)."""


def batchnorm_backward_alt(dout, cache):
    x, x_hat, mean, std, gamma = cache
    dx_hat = dout * gamma
    dx = (dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0)) / std
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)

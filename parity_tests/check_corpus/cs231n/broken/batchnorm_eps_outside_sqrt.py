"""batchnorm_forward divides by sqrt(var) + eps instead of sqrt(var + eps): within about eps / (2 std)
relatively of the right output (a convention, not a bug); the backward uses the same std.
spatial_batchnorm_forward calls it."""


def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.9)
    d = x.shape[1]
    running_mean = bn_param.get("running_mean", np.zeros(d, dtype=x.dtype))
    running_var = bn_param.get("running_var", np.zeros(d, dtype=x.dtype))
    cache = None
    if bn_param["mode"] == "train":
        mean, var = x.mean(axis=0), x.var(axis=0)
        std = np.sqrt(var) + eps
        x_hat = (x - mean) / std
        out = gamma * x_hat + beta
        bn_param["running_mean"] = momentum * running_mean + (1 - momentum) * mean
        bn_param["running_var"] = momentum * running_var + (1 - momentum) * var
        cache = (x, x_hat, mean, std, gamma)
    else:
        out = gamma * (x - running_mean) / (np.sqrt(running_var) + eps) + beta
    return out, cache

"""batchnorm_forward updates the running statistics with PyTorch's convention,
running = (1 - momentum) * running + momentum * batch, the reverse of the handout's (out, cache right)."""

_correct_batchnorm_forward = batchnorm_forward


def batchnorm_forward(x, gamma, beta, bn_param):
    d = x.shape[1]
    old_mean = bn_param.get("running_mean", np.zeros(d, dtype=x.dtype))
    old_var = bn_param.get("running_var", np.zeros(d, dtype=x.dtype))
    out, cache = _correct_batchnorm_forward(x, gamma, beta, bn_param)
    if bn_param["mode"] == "train":
        momentum = bn_param.get("momentum", 0.9)
        bn_param["running_mean"] = (1 - momentum) * old_mean + momentum * x.mean(axis=0)
        bn_param["running_var"] = (1 - momentum) * old_var + momentum * x.var(axis=0)
    return out, cache

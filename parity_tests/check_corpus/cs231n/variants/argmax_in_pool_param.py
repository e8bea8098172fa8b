"""max_pool_forward_naive records each window's argmax in pool_param["argmax"] (adding a key to the dict
it was given) and the backward routes the gradient through it (right)."""

_plain_max_pool_forward = max_pool_forward_naive


def max_pool_forward_naive(x, pool_param):
    out, cache = _plain_max_pool_forward(x, pool_param)
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    argmax = np.zeros(out.shape + (2,), dtype=np.int64)
    for i in range(out.shape[2]):
        for j in range(out.shape[3]):
            window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]
            flat = window.reshape(window.shape[0], window.shape[1], -1).argmax(axis=2)
            argmax[:, :, i, j, 0] = i * stride + flat // pw
            argmax[:, :, i, j, 1] = j * stride + flat % pw
    pool_param["argmax"] = argmax
    return out, cache


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    argmax = pool_param["argmax"]
    n, c = np.meshgrid(np.arange(dout.shape[0]), np.arange(dout.shape[1]), indexing="ij")
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            np.add.at(dx, (n, c, argmax[:, :, i, j, 0], argmax[:, :, i, j, 1]), dout[:, :, i, j])
    return dx

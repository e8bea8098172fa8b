"""max_pool_backward_naive loops with Python 2's xrange: NameError "name 'xrange' is not defined" under Python 3."""


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    dx = np.zeros_like(x)
    for n in xrange(dout.shape[0]):
        for c in xrange(dout.shape[1]):
            for i in xrange(dout.shape[2]):
                for j in xrange(dout.shape[3]):
                    window = x[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw]
                    u, v = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, i * stride + u, j * stride + v] += dout[n, c, i, j]
    return dx

"""conv_backward_naive sends each output's gradient to the window at (i, j) instead of (i stride, j stride):
dx wrong whenever stride > 1 (dw and db right)."""

_correct_conv_backward = conv_backward_naive


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    pad = conv_param["pad"]
    _, _, height, width = x.shape
    _, _, kh, kw = w.shape
    _, dw, db = _correct_conv_backward(dout, cache)
    dx_pad = np.zeros((x.shape[0], x.shape[1], height + 2 * pad, width + 2 * pad))
    for n in range(dout.shape[0]):
        for f in range(dout.shape[1]):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    dx_pad[n, :, i:i + kh, j:j + kw] += dout[n, f, i, j] * w[f]
    return dx_pad[:, :, pad:pad + height, pad:pad + width], dw, db

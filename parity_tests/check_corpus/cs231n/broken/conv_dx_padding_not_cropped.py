"""conv_backward_naive returns the gradient of the padded input, (N, C, H + 2 pad, W + 2 pad): the
padding not cropped off dx (dw and db right)."""

_correct_conv_backward = conv_backward_naive


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    pad = conv_param["pad"]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    return _correct_conv_backward(dout, (x_pad, w, b, dict(conv_param, pad=0)))

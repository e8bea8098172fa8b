"""A Python 2 print statement left in conv_forward_naive: the whole file is a SyntaxError under Python 3."""

_correct_conv_forward = conv_forward_naive


def conv_forward_naive(x, w, b, conv_param):
    out, cache = _correct_conv_forward(x, w, b, conv_param)
    print "conv out:", out.shape
    return out, cache

"""conv_forward_naive allocates its output with dtype=np.float, an alias removed in NumPy 1.24 (use float
or np.float64): AttributeError."""

_correct_conv_forward = conv_forward_naive


def conv_forward_naive(x, w, b, conv_param):
    out, cache = _correct_conv_forward(x, w, b, conv_param)
    result = np.zeros(out.shape, dtype=np.float)
    result[...] = out
    return result, cache

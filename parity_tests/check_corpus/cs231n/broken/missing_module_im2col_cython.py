"""conv_forward_naive uses the course's Cython extension, cs231n.im2col_cython, which is only there after
`python setup.py build_ext --inplace`: ModuleNotFoundError "No module named 'cs231n.im2col_cython'"."""


def conv_forward_naive(x, w, b, conv_param):
    from cs231n.im2col_cython import im2col_cython

    stride, pad = conv_param["stride"], conv_param["pad"]
    n_filters, _, kh, kw = w.shape
    columns = im2col_cython(x, kh, kw, pad, stride)
    out_h = 1 + (x.shape[2] + 2 * pad - kh) // stride
    out_w = 1 + (x.shape[3] + 2 * pad - kw) // stride
    out = (w.reshape(n_filters, -1) @ columns + b[:, None]).reshape(n_filters, out_h, out_w, x.shape[0])
    return out.transpose(3, 0, 1, 2), (x, w, b, conv_param)

"""conv_forward_naive and conv_backward_naive as matrix products over the windows, using the package's
sibling module (from cs231n.im2col import ...): right, and it needs layers.py imported as the package."""
from cs231n.im2col import col2im, im2col


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    n_filters, _, kh, kw = w.shape
    out_h = 1 + (x.shape[2] + 2 * pad - kh) // stride
    out_w = 1 + (x.shape[3] + 2 * pad - kw) // stride
    columns = im2col(x, kh, kw, pad, stride)                       # (N, C kh kw, H' W')
    out = w.reshape(n_filters, -1) @ columns + b[:, None]           # (N, F, H' W')
    return out.reshape(x.shape[0], n_filters, out_h, out_w), (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    n_filters, _, kh, kw = w.shape
    grads = dout.reshape(dout.shape[0], n_filters, -1)               # (N, F, H' W')
    columns = im2col(x, kh, kw, pad, stride)                        # (N, C kh kw, H' W')
    dw = np.einsum("nfp,nkp->fk", grads, columns).reshape(w.shape)
    dx = col2im(w.reshape(n_filters, -1).T @ grads, x.shape, kh, kw, pad, stride)
    return dx, dw, dout.sum(axis=(0, 2, 3))

"""affine_backward returns db = dout, shape (N, M): the bias gradient not summed over the batch."""


def affine_backward(dout, cache):
    x, w, b = cache
    rows = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = rows.T @ dout
    db = dout
    return dx, dw, db

"""affine_backward returns dw as dout^T X, shape (M, D): the transpose of the gradient (dx and db right)."""


def affine_backward(dout, cache):
    x, w, b = cache
    rows = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = dout.T @ rows
    db = dout.sum(axis=0)
    return dx, dw, db

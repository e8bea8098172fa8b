"""affine_backward calls np.reshape(..., newshape=...), a keyword NumPy deprecated in 2.1 and has since
removed (use shape= or pass it positionally): TypeError "unexpected keyword argument 'newshape'"."""


def affine_backward(dout, cache):
    x, w, b = cache
    rows = np.reshape(x, newshape=(x.shape[0], -1))
    dx = np.reshape(dout @ w.T, newshape=x.shape)
    return dx, rows.T @ dout, dout.sum(axis=0)

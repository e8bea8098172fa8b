"""maxpool_backward puts each window's gradient at column j + col instead of j stride + col: a wrong
index, right only at stride 1 (the rows are right)."""


def maxpool_backward(dY, cache):
    X, size, stride = cache
    windows = _windows(X, size, size, stride)
    first = windows.reshape(windows.shape[:3] + (size * size, -1)).argmax(axis=3)
    rows, cols = np.unravel_index(first, (size, size))
    n, i, j, c = np.indices(first.shape)
    dX = np.zeros(X.shape)
    np.add.at(dX, (n, i * stride + rows, j + cols, c), dY)
    return dX

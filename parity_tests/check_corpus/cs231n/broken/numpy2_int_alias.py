"""svm_loss counts the positive margins with .astype(np.int), an alias removed in NumPy 1.24 (use int or
np.int64): AttributeError."""


def svm_loss(x, y):
    n = x.shape[0]
    margins = np.maximum(0, x - x[np.arange(n), y][:, None] + 1.0)
    margins[np.arange(n), y] = 0
    positive = (margins > 0).astype(np.int)
    dx = positive.astype(x.dtype)
    dx[np.arange(n), y] = -positive.sum(axis=1)
    return margins.sum() / n, dx / n

"""affine_forward flattens with np.product, removed in NumPy 2.0 (use np.prod): AttributeError."""


def affine_forward(x, w, b):
    rows = x.reshape(x.shape[0], np.product(x.shape[1:]))
    return rows.dot(w) + b, (x, w, b)

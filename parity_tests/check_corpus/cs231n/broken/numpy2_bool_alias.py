"""relu_backward builds its mask with .astype(np.bool): an AttributeError on NumPy 1.24 to 1.26, where the
alias was removed; NumPy 2.0 defines np.bool again (numpy's bool type), so there it runs and is right."""


def relu_backward(dout, cache):
    x = cache
    return dout * (x > 0).astype(np.bool)

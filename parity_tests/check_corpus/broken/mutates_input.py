"""relu_vector zeroes the negative entries of its input in place and returns the input."""


def relu_vector(a, device):
    a[a < 0] = 0
    return a

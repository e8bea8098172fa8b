"""relu_backward zeroes dout in place and returns it: dx right, the caller's upstream gradient changed."""


def relu_backward(dout, cache):
    x = cache
    dx = dout
    dx[x <= 0] = 0
    return dx

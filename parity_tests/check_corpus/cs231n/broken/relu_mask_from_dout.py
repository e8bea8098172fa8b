"""relu_backward masks with dout > 0 instead of x > 0: the mask taken from the wrong tensor."""


def relu_backward(dout, cache):
    return dout * (dout > 0)

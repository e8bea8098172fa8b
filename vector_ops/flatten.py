"""Reshape layer (seed 000 eqs. 3-4): row-major order makes it a reshape of the same memory."""

from simple_conv_net.functions import Kernels, flatten_op


def flatten_forward(x, start_dim, end_dim):
    shape = x.shape
    merged = 1
    for size in shape[start_dim:end_dim + 1]:
        merged *= size
    return x.reshape(*shape[:start_dim], merged, *shape[end_dim + 1:])


def flatten_backward(grad_z, input_shape):
    """The reshape moves no value, so dL/da is delta read back in the input's shape."""
    return grad_z.reshape(input_shape)


flatten = flatten_op(Kernels(flatten_forward, flatten_backward))

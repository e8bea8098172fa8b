"""ReLU elementwise on the whole tensor: z = max(a, 0)."""

from simple_conv_net.functions import Kernels, relu_op


def relu_forward(x):
    return x.clamp_min(0)


def relu_backward(grad_z, z):
    """dL/da = delta where z > 0, else 0 (the derivative of max(a, 0), taken as 0 at a = 0)."""
    return grad_z * (z > 0)


relu = relu_op(Kernels(relu_forward, relu_backward))

"""ReLU elementwise on the whole tensor: z = max(a, 0)."""

import torch

from simple_conv_net.functions import Kernels, relu_op


def relu_forward(x):
    return x.clamp_min(0)


def relu_backward(grad_z, z):
    """dL/da = 0 where z <= 0, else delta (the derivative of max(a, 0), taken as 0 at a = 0).

    Selected, not multiplied by a 0/1 mask: an infinite delta times 0 would give NaN, and a NaN
    output (NaN <= 0 is false) passes its delta through, as PyTorch's threshold backward does.
    """
    return torch.where(z <= 0, torch.zeros((), dtype=grad_z.dtype, device=grad_z.device), grad_z)


relu = relu_op(Kernels(relu_forward, relu_backward))

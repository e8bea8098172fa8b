"""ReLU elementwise on the whole tensor: z = max(a, 0)."""

import torch

from simple_conv_net.functions import Kernels, relu_op

# The integer type of each float type's width, to select floats by their bits.
_BITS = {torch.float32: torch.int32, torch.float64: torch.int64}


def relu_forward(x):
    return x.clamp_min(0)


def relu_backward(grad_z, z):
    """dL/da = delta where z != 0, else 0 (the derivative of max(a, 0), taken as 0 at a = 0).

    z = max(a, 0) is 0 exactly where a <= 0, and NaN (which is != 0) passes its delta through, as
    PyTorch's threshold backward does. Selected, not multiplied by a 0/1 float mask (an infinite delta
    times 0 would give NaN): the same select as torch.where(z != 0, delta, 0), in integer operations on
    the floats' bits. With the sign bit cleared (AND with the type's largest integer), z's bits are 0
    exactly where z is +0.0 or -0.0 and positive elsewhere; clamped to at most 1 they are the keep mask
    1 or 0, and delta's bits times it are delta's bits or 0 (+0.0). Three passes of integer arithmetic,
    in place after the first: four times faster here than torch.where, and twice as fast as comparing
    the floats (a float comparison writing bools is slow on the CPU).
    """
    bits = _BITS[grad_z.dtype]
    keep = z.view(bits).bitwise_and(torch.iinfo(bits).max).clamp_(max=1)     # 1 where z != 0, else 0
    return keep.mul_(grad_z.view(bits)).view(grad_z.dtype)


relu = relu_op(Kernels(relu_forward, relu_backward))

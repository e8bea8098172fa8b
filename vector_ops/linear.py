"""Fully connected layer as one matrix product (seed 000 eq. 5, task 2c).

    a  [N, D],  W [P, D],  b [P]   ->   z = a @ W^T + b   [N, P]
"""

import torch

from simple_conv_net.functions import Kernels, linear_op


def linear_forward(a, weight, bias):
    if bias is None:
        return torch.matmul(a, weight.t())
    return torch.addmm(bias, a, weight.t())              # b + a @ W^T, bias fused into the product


def linear_backward(delta, a, weight, needs):
    """With delta = dL/dz [N, P]:

        dL/da = delta @ W         [N, D]
        dL/dW = delta^T @ a       [P, D]   (dL/dw[j,i] = sum_n delta[n,j] a[n,i])
        dL/db = sum_n delta[n]    [P]
    """
    needs_input, needs_weight, needs_bias = needs
    grad_a = torch.matmul(delta, weight) if needs_input else None
    grad_w = torch.matmul(delta.t(), a) if needs_weight else None
    grad_b = delta.sum(dim=0) if needs_bias else None
    return grad_a, grad_w, grad_b


linear = linear_op(Kernels(linear_forward, linear_backward))

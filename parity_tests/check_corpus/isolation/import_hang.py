"""A submission that trains a network at import time, forever: the import itself times out."""

import torch

while True:
    torch.randn(10)


def relu_vector(a, device):
    return a.clamp(min=0)

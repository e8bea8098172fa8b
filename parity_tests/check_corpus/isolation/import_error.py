"""A submission that imports a module it does not have: every function is an error, with the import's reason."""

import torch
import numpy_extensions_of_my_own  # noqa: F401


def conv2d_vector(x_in, conv_weight, conv_bias, device):
    return torch.nn.functional.conv2d(x_in, conv_weight, conv_bias)

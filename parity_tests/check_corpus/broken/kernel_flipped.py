"""conv2d_vector as a true convolution: the kernel flipped, where PyTorch (and eq. 1) cross-correlates."""


def conv2d_vector(x_in, conv_weight, conv_bias, device):
    return torch.nn.functional.conv2d(x_in, conv_weight.flip(2, 3), conv_bias).to(device)

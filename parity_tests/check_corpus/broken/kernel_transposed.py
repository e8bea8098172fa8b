"""conv2d_vector reads each filter as w[c, :, j, i]: the kernel's rows and columns swapped."""


def conv2d_vector(x_in, conv_weight, conv_bias, device):
    return torch.nn.functional.conv2d(x_in, conv_weight.transpose(2, 3), conv_bias).to(device)

"""The handout's signatures changed: conv2d_vector without device (still callable), fc_layer_vector with
the weight and the input swapped in name only, pool2d_vector with a required extra argument."""


def conv2d_vector(x, w, b):
    return torch.nn.functional.conv2d(x, w, b)


def pool2d_vector(a, kernel, stride, device):
    return torch.nn.functional.max_pool2d(a, kernel, stride)

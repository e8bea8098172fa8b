"""pool2d_vector slides its 2x2 window by 1 instead of 2."""


def pool2d_vector(a, device):
    return torch.nn.functional.max_pool2d(a, kernel_size=2, stride=1).to(device)

"""reshape_vector flattens each sample in (H, W, C) order, as TensorFlow lays images out."""


def reshape_vector(a, device):
    return a.permute(0, 2, 3, 1).reshape(a.shape[0], -1).to(device)

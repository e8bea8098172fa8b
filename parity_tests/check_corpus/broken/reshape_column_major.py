"""reshape_scalar walks each sample in column-major order (numpy's order='F')."""


def reshape_scalar(a, device):
    flat = [torch.from_numpy(sample.numpy().reshape(-1, order="F").copy()) for sample in a]
    return torch.stack(flat).to(device)

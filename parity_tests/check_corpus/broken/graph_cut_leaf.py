"""relu_vector builds a new tensor from the values and marks it requires_grad_: a leaf, cut from its input."""


def relu_vector(a, device):
    return torch.tensor(a.clamp(min=0).tolist(), device=device).requires_grad_()

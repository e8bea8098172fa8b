"""relu_vector as a custom autograd.Function whose backward forgets the mask: dL/da = dL/dz everywhere."""


class _ReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        return a.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output


def relu_vector(a, device):
    return _ReLU.apply(a)

"""relu_vector as a custom autograd.Function whose backward uses a name it never saved."""


class _ReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a):
        return a.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (a,) = ctx.saved_tensors
        return grad_output * (a > 0)


def relu_vector(a, device):
    return _ReLU.apply(a)

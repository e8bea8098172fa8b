"""fc_layer_scalar indexes the bias with the sample's index: bias[n] instead of bias[j]."""


def fc_layer_scalar(a, weight, bias, device):
    n_batch, _ = a.shape
    z = torch.zeros(n_batch, weight.shape[0], device=device)
    for n in range(n_batch):
        for j in range(weight.shape[0]):
            z[n, j] = (weight[j] * a[n]).sum() + bias[n]
    return z

"""conv2d_scalar reads the kernel as w[c, :, j, i]: each filter transposed."""


def conv2d_scalar(x_in, conv_weight, conv_bias, device):
    n_batch, c_in, s_in, _ = x_in.shape
    c_out, _, k, _ = conv_weight.shape
    s_out = s_in - k + 1
    z = torch.zeros(n_batch, c_out, s_out, s_out, device=device)
    for n in range(n_batch):
        for c in range(c_out):
            for m in range(s_out):
                for l in range(s_out):
                    window = x_in[n, :, m:m + k, l:l + k]
                    z[n, c, m, l] = (window * conv_weight[c].transpose(1, 2)).sum() + conv_bias[c]
    return z

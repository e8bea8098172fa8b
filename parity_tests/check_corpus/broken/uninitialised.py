"""conv2d_vector writes its output into torch.empty and its loop misses the last column."""


def conv2d_vector(x_in, conv_weight, conv_bias, device):
    n_batch, _, s_in, _ = x_in.shape
    c_out, _, k, _ = conv_weight.shape
    s_out = s_in - k + 1
    full = (conv_weight2rows(conv_weight) @ im2col(x_in, k, device) + conv_bias.reshape(1, -1, 1))
    full = full.reshape(n_batch, c_out, s_out, s_out)
    z = torch.empty(n_batch, c_out, s_out, s_out, device=device)
    for l in range(s_out - 1):
        z[:, :, :, l] = full[:, :, :, l]
    return z

"""conv2d_vector reads each filter as w[c, :, j, i]: the kernel's rows and columns swapped."""


def conv2d_vector(x_in, conv_weight, conv_bias, device):
    n_batch, _, s_in, _ = x_in.shape
    c_out, _, k, _ = conv_weight.shape
    columns = im2col(x_in, k, device)
    z = conv_weight2rows(conv_weight.transpose(2, 3)) @ columns + conv_bias.reshape(1, -1, 1)
    return z.reshape(n_batch, c_out, s_in - k + 1, s_in - k + 1)

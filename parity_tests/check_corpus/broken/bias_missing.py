"""conv2d_vector forgets the bias."""


def conv2d_vector(x_in, conv_weight, conv_bias, device):
    n_batch, _, s_in, _ = x_in.shape
    c_out, _, k, _ = conv_weight.shape
    s_out = s_in - k + 1
    z = conv_weight2rows(conv_weight) @ im2col(x_in, k, device)
    return z.reshape(n_batch, c_out, s_out, s_out)

"""The handout's signatures changed: conv2d_vector without device (still callable), fc_layer_vector with
the weight and the input swapped in name only, pool2d_vector with a required extra argument."""


def conv2d_vector(x, w, b):
    n_batch, _, s_in, _ = x.shape
    c_out, _, k, _ = w.shape
    z = conv_weight2rows(w) @ im2col(x, k, "cpu") + b.reshape(1, -1, 1)
    return z.reshape(n_batch, c_out, s_in - k + 1, s_in - k + 1)


def pool2d_vector(a, kernel, stride, device):
    return a.unfold(2, kernel, stride).unfold(3, kernel, stride).amax(dim=(4, 5))

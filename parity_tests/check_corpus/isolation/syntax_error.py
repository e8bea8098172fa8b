"""A submission with a syntax error (a def without its colon): every function is an error, pointing at the line."""


def conv2d_vector(x_in, conv_weight, conv_bias, device)
    return x_in

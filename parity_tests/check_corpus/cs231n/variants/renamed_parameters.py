"""conv_forward_naive and conv_backward_naive with their own parameter names (inputs, filters, biases,
params; grad_out, saved): called by position, they are right."""

_named_conv_forward = conv_forward_naive
_named_conv_backward = conv_backward_naive


def conv_forward_naive(inputs, filters, biases, params):
    return _named_conv_forward(inputs, filters, biases, params)


def conv_backward_naive(grad_out, saved):
    return _named_conv_backward(grad_out, saved)

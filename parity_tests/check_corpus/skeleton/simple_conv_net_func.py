"""An untouched skeleton of the homework's simple_conv_net_func.py: only diff_mse written, every layer `pass`.

Written for the checker's tests from the handout's names and argument lists (seed 000), not copied from
the course's file.
"""

import torch


def diff_mse(x, y):
    x_np = x.data.cpu().numpy()
    y_np = y.data.cpu().numpy()
    return ((x_np - y_np) ** 2).mean()


def conv2d_scalar(x_in, conv_weight, conv_bias, device):
    # TO DO
    pass


def conv2d_vector(x_in, conv_weight, conv_bias, device):
    # TO DO
    pass


def im2col(X, kernel_size, device):
    # TO DO
    pass


def conv_weight2rows(conv_weight):
    # TO DO
    pass


def pool2d_scalar(a, device):
    # TO DO
    pass


def pool2d_vector(a, device):
    # TO DO
    pass


def relu_scalar(a, device):
    # TO DO
    pass


def relu_vector(a, device):
    # TO DO
    pass


def reshape_vector(a, device):
    # TO DO
    pass


def reshape_scalar(a, device):
    # TO DO
    pass


def fc_layer_scalar(a, weight, bias, device):
    # TO DO
    pass


def fc_layer_vector(a, weight, bias, device):
    # TO DO
    pass

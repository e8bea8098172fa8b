"""utils.py of the Python 3 port of the CMU LeNet handout (SFU CMPT 412 project 1), in our own words
(written for the checker's tests; not the course's file).

The port keeps the Octave handout's memory order: each column of a layer's data [h w c, batch] holds
its sample in Fortran order of (height, width, channel), the height varying fastest, and its given
im2col_conv, col2im_conv, conv_layer_backward and pooling_layer_backward read and write it so. Its
hint for a faster convolution, im2col_conv_batch, reads the column in C order of (channel, height,
width) instead. layers and params are lists indexed from 0 (layer i's parameters are params[i - 1]);
every b is [1, num].
"""
import copy

import numpy as np


def as_images(data, height, width, channel):
    """[h w c, batch] columns -> array (h, w, c, batch), the columns read in Fortran order."""
    return data.reshape(height, width, channel, -1, order="F")


def as_columns(images):
    """array (h, w, c, batch) -> [h w c, batch] columns in Fortran order."""
    return images.reshape(-1, images.shape[-1], order="F")


def im2col_conv(input_n, layer, h_out, w_out):
    """One sample's column -> col [k k c, h_out w_out]: output position (h, w) is column h + w h_out, its
    window's values in Fortran order of (row, column, channel)."""
    k, stride, pad = layer["k"], layer["stride"], layer["pad"]
    im = input_n["data"].reshape(input_n["height"], input_n["width"], input_n["channel"], order="F")
    im = np.pad(im, ((pad, pad), (pad, pad), (0, 0)))
    col = np.zeros((k * k * input_n["channel"], h_out * w_out))
    for h in range(h_out):
        for w in range(w_out):
            col[:, h + w * h_out] = im[h * stride:h * stride + k, w * stride:w * stride + k, :].ravel(order="F")
    return col


def col2im_conv(col, input_data, layer, h_out, w_out):
    """The adjoint of im2col_conv: the columns added back onto their windows; -> image (h_in, w_in, c)."""
    k, stride, pad = layer["k"], layer["stride"], layer["pad"]
    h_in, w_in, c = input_data["height"], input_data["width"], input_data["channel"]
    im = np.zeros((h_in + 2 * pad, w_in + 2 * pad, c))
    for h in range(h_out):
        for w in range(w_out):
            window = col[:, h + w * h_out].reshape(k, k, c, order="F")
            im[h * stride:h * stride + k, w * stride:w * stride + k, :] += window
    return im[pad:pad + h_in, pad:pad + w_in, :]


def im2col_conv_batch(input_n, layer, h_out, w_out):
    """The port's hint, for a whole batch: col [k k c, h_out w_out, batch], reading each column in C order
    of (channel, height, width); position (h, w) is column h w_out + w, its window's values in C order of
    (channel, row, column). (The course's version indexes the position h h_out + w, the same on square
    outputs.)"""
    k, stride, pad = layer["k"], layer["stride"], layer["pad"]
    c, batch_size = input_n["channel"], input_n["batch_size"]
    im = input_n["data"].reshape(c, input_n["height"], input_n["width"], batch_size)
    im = np.pad(im, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    col = np.zeros((k * k * c, h_out * w_out, batch_size))
    for h in range(h_out):
        for w in range(w_out):
            col[:, h * w_out + w, :] = im[:, h * stride:h * stride + k, w * stride:w * stride + k, :].reshape(-1, batch_size)
    return col


def get_lr(iter, epsilon, gamma, power):
    """The learning rate at an iteration: epsilon / (1 + gamma iter)^power."""
    return epsilon / (1 + gamma * iter) ** power


def sgd_momentum(rate, mu, weight_decay, params, param_winc, param_grad):
    """SGD with momentum, one rate for w and b, L2 weight decay on w alone. For each layer i (from 0):
    winc_w = mu winc_w + rate (dw + weight_decay w),  w = w - winc_w;
    winc_b = mu winc_b + rate db,                     b = b - winc_b.
    Returns new (params, param_winc); the arguments are left unchanged."""
    params_ = copy.deepcopy(params)
    param_winc_ = copy.deepcopy(param_winc)
    for i in range(len(params)):
        param_winc_[i]["w"] = mu * param_winc[i]["w"] + rate * (param_grad[i]["w"] + weight_decay * params[i]["w"])
        param_winc_[i]["b"] = mu * param_winc[i]["b"] + rate * param_grad[i]["b"]
        params_[i]["w"] = params[i]["w"] - param_winc_[i]["w"]
        params_[i]["b"] = params[i]["b"] - param_winc_[i]["b"]
    return params_, param_winc_

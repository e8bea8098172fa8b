"""CMU 10-601 (spring 2017) homework 7's cnn_lenet.py, completed, as a student who also made it run
under Python 3 would hand it in (written for the checker's tests; not the course's file).

The handout's conventions, which every function here keeps:
- A layer's data is a dict {'height', 'width', 'channel', 'batch_size', 'data'} with data of shape
  [height * width * channel, batch_size]: one column per sample, its values in C order of
  (height, width, channel), the channel varying fastest (the given im2col_conv reads a column with
  np.reshape(column, (h, w, c))).
- layers and params are dicts keyed from 1; layer i's parameters are params[i - 1].
- A convolution's param w is [k * k * c, num] (rows in C order of (kernel row, kernel column,
  channel)) and b is [num]; an inner product's w is [inputs, outputs] and b is [outputs].
- A backward gets `output` with its 'diff' (the gradient of the loss with respect to output['data'])
  and returns the gradients summed over the batch (conv_net divides them by the batch size):
  (param_grad {'w', 'b'}, input_od) for layers with parameters, input_od alone otherwise.
- get_lr, im2col_conv, col2im_conv and the convolution are given by the handout (here in our words,
  the convolution also handling padding); the pooling, ReLU and inner product layers and
  sgd_momentum are the homework's questions Q1-Q7.
"""
import copy
import math

import numpy as np


def _as_images(data, height, width, channel):
    """[h w c, batch] columns -> array (h, w, c, batch)."""
    return data.reshape(height, width, channel, -1)


def _as_columns(images):
    """array (h, w, c, batch) -> [h w c, batch] columns."""
    return images.reshape(-1, images.shape[-1])


def _layout(height, width, channel, batch_size, data):
    return {"height": height, "width": width, "channel": channel, "batch_size": batch_size, "data": data}


def im2col_conv(input_n, layer, h_out, w_out):
    """One sample's column (input_n['data'], [h w c]) -> col [k k c, h_out w_out]: the window of each
    output position as a column, its values in C order of (row, column, channel)."""
    k, stride, pad = layer["k"], layer["stride"], layer["pad"]
    im = input_n["data"].reshape(input_n["height"], input_n["width"], input_n["channel"])
    im = np.pad(im, ((pad, pad), (pad, pad), (0, 0)))
    col = np.zeros((k * k * input_n["channel"], h_out * w_out))
    for h in range(h_out):
        for w in range(w_out):
            col[:, h * w_out + w] = im[h * stride:h * stride + k, w * stride:w * stride + k, :].ravel()
    return col


def col2im_conv(col, input, layer, h_out, w_out):
    """The adjoint of im2col_conv: each column of col [k k c, h_out w_out] added back onto its window;
    returns the image (h_in, w_in, c) with the padding cropped off."""
    k, stride, pad = layer["k"], layer["stride"], layer["pad"]
    h_in, w_in, c = input["height"], input["width"], input["channel"]
    im = np.zeros((h_in + 2 * pad, w_in + 2 * pad, c))
    col = col.reshape(k * k * c, h_out * w_out)
    for h in range(h_out):
        for w in range(w_out):
            im[h * stride:h * stride + k, w * stride:w * stride + k, :] += col[:, h * w_out + w].reshape(k, k, c)
    return im[pad:pad + h_in, pad:pad + w_in, :]


def conv_layer_forward(input, layer, param):
    """Convolution (given): out[:, n] = for each position, its window column . w + b."""
    h_in, w_in, c, batch_size = input["height"], input["width"], input["channel"], input["batch_size"]
    k, pad, stride, num = layer["k"], layer["pad"], layer["stride"], layer["num"]
    h_out = (h_in + 2 * pad - k) // stride + 1
    w_out = (w_in + 2 * pad - k) // stride + 1
    data = np.zeros((h_out * w_out * num, batch_size))
    for n in range(batch_size):
        col = im2col_conv(_layout(h_in, w_in, c, 1, input["data"][:, n]), layer, h_out, w_out)
        data[:, n] = (col.T @ param["w"] + param["b"]).ravel()      # [h_out w_out, num] -> (h, w, c)
    return _layout(h_out, w_out, num, batch_size, data)


def conv_layer_backward(output, input, layer, param):
    """Convolution backward (given): for each sample, dw += col . diff, db += diff summed over the
    positions, and the windows' gradient w . diff^T folded back with col2im_conv."""
    h_in, w_in, c, batch_size = input["height"], input["width"], input["channel"], input["batch_size"]
    h_out, w_out, num = output["height"], output["width"], layer["num"]
    input_od = np.zeros(input["data"].shape)
    param_grad = {"w": np.zeros(param["w"].shape), "b": np.zeros(param["b"].shape)}
    for n in range(batch_size):
        col = im2col_conv(_layout(h_in, w_in, c, 1, input["data"][:, n]), layer, h_out, w_out)
        diff = output["diff"][:, n].reshape(h_out * w_out, num)
        param_grad["w"] += col @ diff
        param_grad["b"] += diff.sum(axis=0)
        input_od[:, n] = col2im_conv(param["w"] @ diff.T, input, layer, h_out, w_out).ravel()
    return param_grad, input_od


def pooling_layer_forward(input, layer):
    """Q1: max pooling, k x k windows `stride` apart, each channel on its own (padding 0)."""
    h_in, w_in, c, batch_size = input["height"], input["width"], input["channel"], input["batch_size"]
    k, stride = layer["k"], layer["stride"]
    h_out = (h_in - k) // stride + 1
    w_out = (w_in - k) // stride + 1
    images = _as_images(input["data"], h_in, w_in, c)
    pooled = np.zeros((h_out, w_out, c, batch_size))
    for h in range(h_out):
        for w in range(w_out):
            pooled[h, w] = images[h * stride:h * stride + k, w * stride:w * stride + k].max(axis=(0, 1))
    return _layout(h_out, w_out, c, batch_size, _as_columns(pooled))


def pooling_layer_backward(output, input, layer):
    """Q4: each window's gradient to its maximum alone (the first in row-major order on a tie),
    added up where windows overlap."""
    h_in, w_in, c = input["height"], input["width"], input["channel"]
    k, stride = layer["k"], layer["stride"]
    images = _as_images(input["data"], h_in, w_in, c)
    diff = _as_images(output["diff"], output["height"], output["width"], c)
    input_od = np.zeros(images.shape)
    for h in range(output["height"]):
        for w in range(output["width"]):
            window = images[h * stride:h * stride + k, w * stride:w * stride + k]     # (k, k, c, batch)
            first_max = window.reshape(k * k, *window.shape[2:]).argmax(axis=0)        # (c, batch)
            rows, cols = np.unravel_index(first_max, (k, k))
            channel, sample = np.indices(first_max.shape)
            np.add.at(input_od, (h * stride + rows, w * stride + cols, channel, sample), diff[h, w])
    return _as_columns(input_od)


def relu_forward(input, layer):
    """Q2: max(data, 0), shape unchanged."""
    return _layout(input["height"], input["width"], input["channel"], input["batch_size"],
                   np.maximum(input["data"], 0))


def relu_backward(output, input, layer):
    """Q5: the gradient passes where the layer's input was positive."""
    return output["diff"] * (input["data"] > 0)


def inner_product_forward(input, layer, param):
    """Q3: out = w^T data + b, [num, batch]; the output a 1 x 1 x num feature map."""
    data = param["w"].T @ input["data"] + param["b"][:, None]
    return _layout(1, 1, layer["num"], input["batch_size"], data)


def inner_product_backward(output, input, layer, param):
    """Q6: out = w^T x + b, so dw = x diff^T [inputs, outputs], db = diff summed over the batch,
    input_od = w diff."""
    param_grad = {"w": input["data"] @ output["diff"].T, "b": output["diff"].sum(axis=1)}
    input_od = param["w"] @ output["diff"]
    return param_grad, input_od


def get_lr(step, epsilon, gamma, power):
    """The learning rate at a step (given): epsilon / (1 + gamma step)^power."""
    return epsilon / math.pow(1 + gamma * step, power)


def sgd_momentum(w_rate, b_rate, mu, decay, params, param_winc, param_grad):
    """Q7: SGD with momentum and L2 weight decay on w alone. For each layer i,
    winc_w = mu winc_w + w_rate (dw + decay w),  w = w - winc_w;
    winc_b = mu winc_b + b_rate db,             b = b - winc_b.
    Returns new (params_, param_winc_); the arguments are left unchanged."""
    params_ = copy.deepcopy(params)
    param_winc_ = copy.deepcopy(param_winc)
    for i in params:
        param_winc_[i]["w"] = mu * param_winc[i]["w"] + w_rate * (param_grad[i]["w"] + decay * params[i]["w"])
        param_winc_[i]["b"] = mu * param_winc[i]["b"] + b_rate * param_grad[i]["b"]
        params_[i]["w"] = params[i]["w"] - param_winc_[i]["w"]
        params_[i]["b"] = params[i]["b"] - param_winc_[i]["b"]
    return params_, param_winc_

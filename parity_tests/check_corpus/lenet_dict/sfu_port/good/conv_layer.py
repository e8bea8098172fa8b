"""conv_layer.py of the Python 3 port: the forward is the student's, the backward the handout's (our words)."""
import numpy as np

from utils import col2im_conv, im2col_conv


def _sample(input_data, n):
    return {"height": input_data["height"], "width": input_data["width"], "channel": input_data["channel"],
            "data": input_data["data"][:, n]}


def conv_layer_forward(input_data, layer, param):
    """Cross-correlation with w [k k c, num] and b [1, num]; the output's columns in Fortran order of
    (height, width, channel), as the given backward reads them."""
    k, pad, stride, num = layer["k"], layer["pad"], layer["stride"], layer["num"]
    batch_size = input_data["batch_size"]
    h_out = (input_data["height"] + 2 * pad - k) // stride + 1
    w_out = (input_data["width"] + 2 * pad - k) // stride + 1
    data = np.zeros((h_out * w_out * num, batch_size))
    for n in range(batch_size):
        col = im2col_conv(_sample(input_data, n), layer, h_out, w_out)    # [k k c, positions]
        data[:, n] = (col.T @ param["w"] + param["b"]).ravel(order="F")   # [positions, num] -> (h, w, c)
    return {"height": h_out, "width": w_out, "channel": num, "batch_size": batch_size, "data": data}


def conv_layer_backward(output, input_data, layer, param):
    """Given: for each sample, db += diff summed over the positions, dw += col diff, and the windows'
    gradient w diff^T folded back by col2im_conv. Returns (param_grad {'w', 'b'}, input_od)."""
    h_out, w_out, num = output["height"], output["width"], layer["num"]
    input_od = np.zeros(input_data["data"].shape)
    param_grad = {"w": np.zeros(param["w"].shape), "b": np.zeros(param["b"].shape)}
    for n in range(input_data["batch_size"]):
        col = im2col_conv(_sample(input_data, n), layer, h_out, w_out)
        diff = output["diff"][:, n].reshape(h_out * w_out, num, order="F")
        param_grad["b"] += diff.sum(axis=0)
        param_grad["w"] += col @ diff
        input_od[:, n] = col2im_conv(param["w"] @ diff.T, input_data, layer, h_out, w_out).ravel(order="F")
    return param_grad, input_od

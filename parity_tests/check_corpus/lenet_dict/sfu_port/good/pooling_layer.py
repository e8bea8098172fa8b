"""pooling_layer.py of the Python 3 port: the forward is the student's, the backward the handout's (our words)."""
import numpy as np

from utils import as_columns, as_images


def _padded(input, pad):
    """The input as (h, w, c, batch) images with `pad` zeros around, as the given backward pads."""
    images = as_images(input["data"], input["height"], input["width"], input["channel"])
    return np.pad(images, ((pad, pad), (pad, pad), (0, 0), (0, 0)))


def pooling_layer_forward(input, layer):
    """Max pooling of k x k windows `stride` apart, each channel on its own."""
    k, pad, stride = layer["k"], layer["pad"], layer["stride"]
    h_out = (input["height"] + 2 * pad - k) // stride + 1
    w_out = (input["width"] + 2 * pad - k) // stride + 1
    images = _padded(input, pad)
    pooled = np.zeros((h_out, w_out) + images.shape[2:])
    for h in range(h_out):
        for w in range(w_out):
            pooled[h, w] = images[h * stride:h * stride + k, w * stride:w * stride + k].max(axis=(0, 1))
    return {"height": h_out, "width": w_out, "channel": input["channel"], "batch_size": input["batch_size"],
            "data": as_columns(pooled)}


def pooling_layer_backward(output, input, layer):
    """Given: each window's gradient to its maximum, the first in the window's Fortran (column-major)
    order on a tie, added up where windows overlap."""
    k, pad, stride = layer["k"], layer["pad"], layer["stride"]
    images = _padded(input, pad)
    diff = as_images(output["diff"], output["height"], output["width"], input["channel"])
    grad = np.zeros(images.shape)
    channel, sample = np.indices(images.shape[2:])
    for h in range(output["height"]):
        for w in range(output["width"]):
            window = images[h * stride:h * stride + k, w * stride:w * stride + k]
            first_max = window.reshape((k * k,) + window.shape[2:], order="F").argmax(axis=0)
            rows, cols = np.unravel_index(first_max, (k, k), order="F")
            np.add.at(grad, (h * stride + rows, w * stride + cols, channel, sample), diff[h, w])
    grad = grad[pad:pad + input["height"], pad:pad + input["width"]]
    return as_columns(grad)

"""inner_product.py of the Python 3 port (the student's): w [inputs, outputs], b [1, outputs]."""
import numpy as np


def inner_product_forward(input, layer, param):
    """out = w^T data + b^T, [num, batch]; the port describes the output as height num, width 1, channel 1."""
    data = param["w"].T @ input["data"] + param["b"].T
    return {"height": data.shape[0], "width": 1, "channel": 1, "batch_size": input["batch_size"], "data": data}


def inner_product_backward(output, input_data, layer, param):
    """dw = x diff^T [inputs, outputs], db = diff summed over the batch (in b's shape), input_od = w diff."""
    param_grad = {"w": input_data["data"] @ output["diff"].T,
                  "b": output["diff"].sum(axis=1).reshape(param["b"].shape)}
    return param_grad, param["w"] @ output["diff"]

"""The port's inner_product.py as handed out (an overlay replacing both functions): zeros of the expected shape."""


def inner_product_forward(input, layer, param):
    n = param["w"].shape[1]
    # Fill in the code here
    return {"height": n, "width": 1, "channel": 1, "batch_size": input["batch_size"],
            "data": np.zeros((n, input["data"].shape[1]))}


def inner_product_backward(output, input_data, layer, param):
    # Fill in the code here
    param_grad = {"b": np.zeros_like(param["b"]), "w": np.zeros_like(param["w"])}
    return param_grad, np.zeros_like(input_data["data"])

"""The homework's questions as handed out (an overlay on good/cnn_lenet.py: the given functions stay,
these replace Q1-Q7). Each fills the output it returns with zeros of the expected shape, as the
handout's starter does ("dummy objects of the expected size and shape but filled with all zeros"),
and sgd_momentum returns unchanged copies. Sizes use // here: the real starter, for Python 2, uses /.
"""


def pooling_layer_forward(input, layer):
    h_out = (input["height"] + 2 * layer["pad"] - layer["k"]) // layer["stride"] + 1
    w_out = (input["width"] + 2 * layer["pad"] - layer["k"]) // layer["stride"] + 1
    output = _layout(h_out, w_out, input["channel"], input["batch_size"],
                     np.zeros((h_out * w_out * input["channel"], input["batch_size"])))
    # TODO: implement your pooling forward here
    return output


def pooling_layer_backward(output, input, layer):
    input_od = np.zeros(input["data"].shape)
    # TODO: implement backward pass here
    return input_od


def relu_forward(input, layer):
    output = _layout(input["height"], input["width"], input["channel"], input["batch_size"],
                     np.zeros(input["data"].shape))
    # TODO: implement your relu forward pass here
    return output


def relu_backward(output, input, layer):
    input_od = np.zeros(input["data"].shape)
    # TODO: implement your relu backward pass here
    return input_od


def inner_product_forward(input, layer, param):
    output = _layout(1, 1, layer["num"], input["batch_size"], np.zeros((layer["num"], input["batch_size"])))
    # TODO: implement your inner product forward pass here
    return output


def inner_product_backward(output, input, layer, param):
    param_grad = {"b": np.zeros(param["b"].shape), "w": np.zeros(param["w"].shape)}
    input_od = np.zeros(input["data"].shape)
    # TODO: implement your inner product backward pass here
    return param_grad, input_od


def sgd_momentum(w_rate, b_rate, mu, decay, params, param_winc, param_grad):
    params_ = copy.deepcopy(params)
    param_winc_ = copy.deepcopy(param_winc)
    # TODO: your implementation goes below this comment
    return params_, param_winc_

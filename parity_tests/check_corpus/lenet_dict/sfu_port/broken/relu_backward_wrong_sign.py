"""relu_backward passes the gradient where the input was negative: the mask of the wrong sign."""


def relu_backward(output, input_data, layer):
    return output["diff"] * (input_data["data"] < 0)

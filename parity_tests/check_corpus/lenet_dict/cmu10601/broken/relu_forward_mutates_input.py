"""relu_forward zeroes the negative entries through a view of input['data'] (each column a view):
the output right, the previous layer's data changed in place."""


def relu_forward(input, layer):
    output = _layout(input["height"], input["width"], input["channel"], input["batch_size"],
                     np.zeros(input["data"].shape))
    for n in range(input["batch_size"]):
        column = input["data"][:, n]
        column[column < 0] = 0
        output["data"][:, n] = column
    return output

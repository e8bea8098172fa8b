"""The port's relu.py as handed out (an overlay replacing both functions): zeros of the expected shape."""


def relu_forward(input_data):
    output = {key: input_data[key] for key in ("height", "width", "channel", "batch_size")}
    # Fill in the code here
    output["data"] = np.zeros_like(input_data["data"])
    return output


def relu_backward(output, input_data, layer):
    # Fill in the code here
    return np.zeros_like(input_data["data"])

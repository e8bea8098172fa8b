"""The port's pooling_layer_forward as handed out (an overlay; the given backward stays): zeros of the
expected shape."""


def pooling_layer_forward(input, layer):
    k, pad, stride = layer["k"], layer["pad"], layer["stride"]
    h_out = (input["height"] + 2 * pad - k) // stride + 1
    w_out = (input["width"] + 2 * pad - k) // stride + 1
    # Fill in the code here
    return {"height": h_out, "width": w_out, "channel": input["channel"], "batch_size": input["batch_size"],
            "data": np.zeros((h_out * w_out * input["channel"], input["batch_size"]))}

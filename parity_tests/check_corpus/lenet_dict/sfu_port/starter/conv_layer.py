"""The port's conv_layer_forward as handed out (an overlay on good/conv_layer.py; the given backward
stays): its placeholder data is a 4-D array (h_out, w_out, num, batch), not the [h w c, batch] columns."""


def conv_layer_forward(input_data, layer, param):
    k, pad, stride, num = layer["k"], layer["pad"], layer["stride"], layer["num"]
    h_out = (input_data["height"] + 2 * pad - k) // stride + 1
    w_out = (input_data["width"] + 2 * pad - k) // stride + 1
    # Fill in the code here (hint: im2col_conv_batch)
    return {"height": h_out, "width": w_out, "channel": num, "batch_size": input_data["batch_size"],
            "data": np.zeros((h_out, w_out, num, input_data["batch_size"]))}

"""pooling_layer_forward computes its output size with / as the Python 2 handout does: under Python 3
h_out is a float and np.zeros raises "'float' object cannot be interpreted as an integer"."""


def pooling_layer_forward(input, layer):
    h_in, w_in, c, batch_size = input["height"], input["width"], input["channel"], input["batch_size"]
    k, pad, stride = layer["k"], layer["pad"], layer["stride"]
    h_out = (h_in + 2 * pad - k) / stride + 1
    w_out = (w_in + 2 * pad - k) / stride + 1
    output = _layout(h_out, w_out, c, batch_size, np.zeros((h_out * w_out * c, batch_size)))
    images = _as_images(input["data"], h_in, w_in, c)
    for h in range(int(h_out)):
        for w in range(int(w_out)):
            output["data"].reshape(int(h_out), int(w_out), c, batch_size)[h, w] = (
                images[h * stride:h * stride + k, w * stride:w * stride + k].max(axis=(0, 1)))
    return output

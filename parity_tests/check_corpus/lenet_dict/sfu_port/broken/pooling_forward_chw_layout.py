"""pooling_layer_forward reads and writes each column in C order of (channel, height, width), the layout of
the port's hint, not the Fortran (height, width, channel) of its given backward. On square inputs the two
orders differ by a transpose of each plane, which max pooling with square windows commutes with, so they
agree there; on a non-square input they do not."""


def pooling_layer_forward(input, layer):
    k, stride = layer["k"], layer["stride"]
    c, h_in, w_in, batch_size = input["channel"], input["height"], input["width"], input["batch_size"]
    h_out, w_out = (h_in - k) // stride + 1, (w_in - k) // stride + 1
    images = input["data"].reshape(c, h_in, w_in, batch_size)
    pooled = np.zeros((c, h_out, w_out, batch_size))
    for h in range(h_out):
        for w in range(w_out):
            pooled[:, h, w] = images[:, h * stride:h * stride + k, w * stride:w * stride + k].max(axis=(1, 2))
    return {"height": h_out, "width": w_out, "channel": c, "batch_size": batch_size,
            "data": pooled.reshape(-1, batch_size)}

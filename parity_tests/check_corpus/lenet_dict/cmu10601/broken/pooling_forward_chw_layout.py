"""pooling_layer_forward reads and writes each column in C order of (channel, height, width), the order
of the handout's own QnA ((i, j, k) at (i-1) COLS + j + (k-1) ROWS COLS), not the (height, width,
channel) of its given code: the given convolution's output is read scrambled."""


def pooling_layer_forward(input, layer):
    h_in, w_in, c, batch_size = input["height"], input["width"], input["channel"], input["batch_size"]
    k, stride = layer["k"], layer["stride"]
    h_out, w_out = (h_in - k) // stride + 1, (w_in - k) // stride + 1
    images = input["data"].reshape(c, h_in, w_in, batch_size)
    pooled = np.zeros((c, h_out, w_out, batch_size))
    for h in range(h_out):
        for w in range(w_out):
            pooled[:, h, w] = images[:, h * stride:h * stride + k, w * stride:w * stride + k].max(axis=(1, 2))
    return _layout(h_out, w_out, c, batch_size, pooled.reshape(-1, batch_size))

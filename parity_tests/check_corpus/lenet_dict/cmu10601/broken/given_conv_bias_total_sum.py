"""conv_layer_backward as the handout gives it: every filter's bias gradient is the sum of diff over all
positions AND filters (np.sum without an axis), not over the positions alone. The handout's own code
(checked, not graded); dw and input_od right."""

_correct_conv_layer_backward = conv_layer_backward


def conv_layer_backward(output, input, layer, param):
    param_grad, input_od = _correct_conv_layer_backward(output, input, layer, param)
    param_grad["b"] = np.full(param["b"].shape, output["diff"].sum())
    return param_grad, input_od

"""inner_product_backward returns dw as diff x^T, [outputs, inputs]: the transpose of w's [inputs, outputs]."""

_correct_inner_product_backward = inner_product_backward


def inner_product_backward(output, input_data, layer, param):
    param_grad, input_od = _correct_inner_product_backward(output, input_data, layer, param)
    param_grad["w"] = output["diff"] @ input_data["data"].T
    return param_grad, input_od

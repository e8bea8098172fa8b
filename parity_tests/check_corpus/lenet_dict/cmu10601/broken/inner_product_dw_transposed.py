"""inner_product_backward returns dw as diff x^T, [outputs, inputs]: the transpose of param['w']'s
shape [inputs, outputs] (db and input_od right)."""

_correct_inner_product_backward = inner_product_backward


def inner_product_backward(output, input, layer, param):
    param_grad, input_od = _correct_inner_product_backward(output, input, layer, param)
    param_grad["w"] = output["diff"] @ input["data"].T
    return param_grad, input_od

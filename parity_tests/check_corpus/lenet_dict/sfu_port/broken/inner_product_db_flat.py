"""inner_product_backward returns db of shape [num] where param['b'] is [1, num], as many students write
np.sum(diff, axis=1): the same numbers, and the update b - rate db broadcasts to [1, num] (right)."""

_correct_inner_product_backward = inner_product_backward


def inner_product_backward(output, input_data, layer, param):
    param_grad, input_od = _correct_inner_product_backward(output, input_data, layer, param)
    param_grad["b"] = output["diff"].sum(axis=1)
    return param_grad, input_od

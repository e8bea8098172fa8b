"""fc_layer_vector computes in float64 (the weights are upcast) and returns float64."""


def fc_layer_vector(a, weight, bias, device):
    return a.double() @ weight.double().t() + bias.double()

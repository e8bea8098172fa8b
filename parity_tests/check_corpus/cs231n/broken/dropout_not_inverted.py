"""dropout_forward keeps each unit with probability p but does not scale by 1/p (vanilla dropout): the
training output's expectation is p x, not x. The backward matches that forward."""

_inverted_dropout_forward = dropout_forward


def dropout_forward(x, dropout_param):
    out, (param, mask) = _inverted_dropout_forward(x, dropout_param)
    if dropout_param["mode"] == "train":
        p = dropout_param["p"]
        return out * p, (param, mask * p)
    return out, (param, mask)

"""dropout_forward reads p as the probability of DROPPING a unit (the 2016-17 handout's convention) in a
2018+ file, whose p is the probability of keeping it: kept with probability 1 - p, scaled by 1/(1 - p).
Right by the older convention."""

_keep_p_dropout_forward = dropout_forward


def dropout_forward(x, dropout_param):
    out, (_, mask) = _keep_p_dropout_forward(x, dict(dropout_param, p=1 - dropout_param["p"]))
    return out, (dropout_param, mask)

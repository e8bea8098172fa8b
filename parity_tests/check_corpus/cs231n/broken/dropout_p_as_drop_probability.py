"""dropout_forward reads p as the probability of DROPPING a unit (the 2016-17 handout's convention) in a
2018+ file, whose p is the probability of keeping it: kept with probability 1 - p, scaled by 1/(1 - p).
Right by the older convention."""


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask = None
    out = x
    if mode == "train":
        mask = (np.random.rand(*x.shape) >= p) / (1 - p)
        out = x * mask
    return out, (dropout_param, mask)

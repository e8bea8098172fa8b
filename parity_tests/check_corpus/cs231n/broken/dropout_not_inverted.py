"""dropout_forward keeps each unit with probability p but does not scale by 1/p (vanilla dropout): the
training output's expectation is p x, not x. The backward matches that forward."""


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask = None
    out = x
    if mode == "train":
        mask = np.random.rand(*x.shape) < p
        out = x * mask
    return out, (dropout_param, mask)

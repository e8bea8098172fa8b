"""dropout_forward draws its mask with randn (normal) instead of rand (uniform): a unit is kept with
probability Phi(p) (0.5 at p = 0, 0.84 at p = 1), not p. The 1/p scale and the backward are right."""


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask = None
    out = x
    if mode == "train":
        mask = (np.random.randn(*x.shape) < p) / p
        out = x * mask
    return out, (dropout_param, mask)

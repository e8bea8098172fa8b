"""dropout_forward scales its boolean mask in place, mask /= p: NumPy refuses to write a float result
into a bool array ("Cannot cast ufunc 'divide' output ... with casting rule 'same_kind'"); use
mask = mask / p."""


def dropout_forward(x, dropout_param):
    p, mode = dropout_param["p"], dropout_param["mode"]
    if "seed" in dropout_param:
        np.random.seed(dropout_param["seed"])
    mask = None
    out = x
    if mode == "train":
        mask = np.random.rand(*x.shape) < p
        mask /= p
        out = x * mask
    return out, (dropout_param, mask)

"""An instructor's own form: a course whose layers take numpy arrays in NHWC order.

    python -m simple_conv_net.check layers.py --form docs/examples/my_course_form.py

The course's functions (each forward returns (out, cache), each backward takes (dout, cache)):

    conv_forward(X, W, b, stride, pad)   X (N, H, W, C_in), W (KH, KW, C_in, C_out), b (C_out,)
    conv_backward(dY, cache)             -> dX, dW, db
    maxpool_forward(X, size, stride)     X (N, H, W, C)
    maxpool_backward(dY, cache)          -> dX
    dense_forward(X, W, b)               X (N, D), W (D, M), b (M,)
    dense_backward(dY, cache)            -> dX, dW, db
    relu_forward(X) / relu_backward(dY, cache)

The checker draws each op's inputs as PyTorch names and lays them out (input [N, C, H, W],
weight [C_out, C_in, KH, KW] or [M, D], bias); this file says how they become the course's
arguments and how the results come back. It is instructor code: it runs inside the checker's
own process, as trusted as a rubric. The submissions still run only in the checker's child processes.
"""

from simple_conv_net.check.forms.adapter import Pair, form


def nhwc(x):
    """[N, C, H, W] -> (N, H, W, C)."""
    return x.transpose(0, 2, 3, 1)


def nchw(x):
    """(N, H, W, C) -> [N, C, H, W]."""
    return x.transpose(0, 3, 1, 2)


CONV = Pair("conv_forward", "conv_backward", "conv2d",
            arguments=lambda t, o: (nhwc(t["input"]), t["weight"].transpose(2, 3, 1, 0), t["bias"],
                                    o["stride"], o["padding"]),
            output=lambda returned: nchw(returned[0]),
            grad_output=nhwc,
            gradients=lambda g: {"input": nchw(g[0]), "weight": g[1].transpose(3, 2, 0, 1), "bias": g[2]})

POOL = Pair("maxpool_forward", "maxpool_backward", "max_pool2d",
            arguments=lambda t, o: (nhwc(t["input"]), o["kernel_size"], o["stride"]),
            output=lambda returned: nchw(returned[0]),
            grad_output=nhwc,
            gradients=lambda dX: {"input": nchw(dX)})

DENSE = Pair("dense_forward", "dense_backward", "linear",
             arguments=lambda t, o: (t["input"], t["weight"].T, t["bias"]),
             gradients=lambda g: {"input": g[0], "weight": g[1].T, "bias": g[2]})

RELU = Pair("relu_forward", "relu_backward", "relu",
            arguments=lambda t, o: (nhwc(t["input"]) if t["input"].ndim == 4 else t["input"],),
            output=lambda returned: nchw(returned[0]) if returned[0].ndim == 4 else returned[0],
            grad_output=lambda dy: nhwc(dy) if dy.ndim == 4 else dy,
            gradients=lambda dX: {"input": nchw(dX) if dX.ndim == 4 else dX})

RUBRIC = {"name": "my-course", "title": "layers: 10 points a layer, forward and backward half each", "items": [
    {"name": f"{layer} {half}", "points": 5, "functions": [f"{layer}_{half}"], "checks": ["values", "gradient", "type", "arguments"]}
    for layer in ("conv", "maxpool", "dense", "relu") for half in ("forward", "backward")]}

FORM = form("my-course", "NHWC numpy layers: conv_forward(X, W, b, stride, pad), maxpool_forward(X, size, stride), "
                         "dense_forward(X, W, b), relu_forward(X) and their backward passes",
            [CONV, POOL, DENSE, RELU], rubric=RUBRIC)

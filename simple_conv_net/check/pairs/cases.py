"""The calls of each function of the cs231n form: the assignment's cases, which decide, and the general ones."""

from __future__ import annotations

import math
from dataclasses import replace

import torch

from ..plans import Call, Draw, ref

DECISIVE = ("assignment", "ties", "large logits", "test mode")     # the classes of cases that decide pass or fail


def _normal(draw: Draw, *shape, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    return draw.normal(*shape, dtype=torch.float64) * scale + shift


def _cases(op: str, draw: Draw) -> list[tuple]:
    """(case, label, inputs, options, candidate's arguments after the arrays) of one op."""
    n = lambda *s, **k: _normal(draw, *s, **k)    # noqa: E731 - a short name for the table
    if op == "cs231n.affine":
        def affine(x_shape, m):
            d = math.prod(x_shape[1:])
            return {"x": n(*x_shape), "w": n(d, m), "b": n(m)}, {}, ()
        return [("assignment", "x (2, 4, 5, 6) -> 3", *affine((2, 4, 5, 6), 3)),
                ("assignment", "x (10, 2, 3), w (6, 5)", *affine((10, 2, 3), 5)),
                ("general", "N=1 x (1, 7) -> 4", *affine((1, 7), 4)),
                ("general", "square x (3, 4), w (4, 4)", *affine((3, 4), 4))]
    if op == "cs231n.relu":
        return [("assignment", "x (3, 4)", {"x": torch.linspace(-0.5, 0.5, 12, dtype=torch.float64).reshape(3, 4)},
                 {}, ()),
                ("assignment", "x (10, 10)", {"x": n(10, 10)}, {}, ()),
                ("general", "N=1 x (1, 2, 3, 3)", {"x": n(1, 2, 3, 3)}, {}, ())]
    if op == "cs231n.conv":
        def conv(x_shape, w_shape, stride, pad):
            param = {"stride": stride, "pad": pad}
            return {"x": n(*x_shape), "w": n(*w_shape), "b": n(w_shape[0])}, param, (param,)
        return [("assignment", "x (2, 3, 4, 4), w (3, 3, 4, 4), stride 2, pad 1", *conv((2, 3, 4, 4), (3, 3, 4, 4), 2, 1)),
                ("assignment", "x (4, 3, 5, 5), w (2, 3, 3, 3), stride 1, pad 1", *conv((4, 3, 5, 5), (2, 3, 3, 3), 1, 1)),
                ("general", "non-square x (2, 2, 7, 5), w (3, 2, 3, 2), stride 2, pad 0",
                 *conv((2, 2, 7, 5), (3, 2, 3, 2), 2, 0)),
                ("general", "N=1 x (1, 2, 5, 5), w (2, 2, 3, 3), stride 1, pad 2", *conv((1, 2, 5, 5), (2, 2, 3, 3), 1, 2)),
                ("general", "x (2, 1, 8, 7), w (2, 1, 2, 3), stride 3, pad 1", *conv((2, 1, 8, 7), (2, 1, 2, 3), 3, 1))]
    if op == "cs231n.max_pool":
        def pool(x, height, width, stride):
            param = {"pool_height": height, "pool_width": width, "stride": stride}
            return {"x": x}, param, (param,)
        ties = torch.randint(0, 3, (2, 2, 4, 4), generator=draw.generator).to(torch.float64)
        return [("assignment", "x (2, 3, 4, 4), 2x2 stride 2", *pool(n(2, 3, 4, 4), 2, 2, 2)),
                ("assignment", "x (3, 2, 8, 8), 2x2 stride 2", *pool(n(3, 2, 8, 8), 2, 2, 2)),
                ("ties", "tied maxima x (2, 2, 4, 4) in 0..2, 2x2 stride 2", *pool(ties, 2, 2, 2)),
                ("general", "overlapping x (2, 2, 7, 7), 3x3 stride 2", *pool(n(2, 2, 7, 7), 3, 3, 2)),
                ("general", "N=1 non-square x (1, 2, 5, 6), 2x3 stride 1", *pool(n(1, 2, 5, 6), 2, 3, 1))]
    if op in ("cs231n.batchnorm", "cs231n.spatial_batchnorm"):
        def norm(x, mode="train", momentum=0.9, eps=1e-5):
            c = x.shape[1]
            inputs = {"x": x, "gamma": n(c), "beta": n(c), "running_mean": n(c), "running_var": n(c).abs() + 0.5}
            param = {"mode": mode, "eps": eps, "momentum": momentum, "running_mean": ref("running_mean"),
                     "running_var": ref("running_var")}
            return inputs, {"mode": mode, "eps": eps, "momentum": momentum}, (param,)
        if op == "cs231n.batchnorm":
            return [("assignment", "x (4, 5) = 5 randn + 12", *norm(n(4, 5, scale=5, shift=12))),
                    ("assignment", "x (50, 6) = 2 randn - 1, momentum 0.8", *norm(n(50, 6, scale=2, shift=-1), momentum=0.8)),
                    ("test mode", "test mode x (4, 5)", *norm(n(4, 5, scale=5, shift=12), "test")),
                    ("general", "x (16, 3) = 3 randn + 1", *norm(n(16, 3, scale=3, shift=1)))]
        return [("assignment", "x (2, 3, 4, 5) = 5 randn + 12", *norm(n(2, 3, 4, 5, scale=5, shift=12))),
                ("test mode", "test mode x (2, 3, 4, 5)", *norm(n(2, 3, 4, 5, scale=4, shift=10), "test")),
                ("general", "N=1 x (1, 2, 3, 3) = 3 randn + 1", *norm(n(1, 2, 3, 3, scale=3, shift=1)))]
    if op == "cs231n.layernorm":
        def layer(x, eps=1e-5):
            return {"x": x, "gamma": n(x.shape[1]), "beta": n(x.shape[1])}, {"eps": eps}, ({"eps": eps},)
        return [("assignment", "x (4, 5) = 5 randn + 12", *layer(n(4, 5, scale=5, shift=12))),
                ("general", "N=1 x (1, 7)", *layer(n(1, 7, scale=2))),
                ("general", "x (3, 8), eps 1e-3", *layer(n(3, 8), 1e-3))]
    if op == "cs231n.groupnorm":
        def group(x, groups, shape):
            c = x.shape[1]
            inputs = {"x": x, "gamma": n(c).reshape(shape(c)), "beta": n(c).reshape(shape(c))}
            return inputs, {"G": groups, "eps": 1e-5}, (groups, {"eps": 1e-5})
        x = n(2, 6, 4, 5, scale=5, shift=12)
        return [("assignment", "x (2, 6, 4, 5), G = 2, gamma (1, C, 1, 1)", *group(x, 2, lambda c: (1, c, 1, 1))),
                ("assignment", "x (2, 6, 4, 5), G = 2, gamma (C,)", *group(x.clone(), 2, lambda c: (c,))),
                ("general", "N=1 x (1, 4, 3, 3), G = 4, gamma (1, C, 1, 1)", *group(n(1, 4, 3, 3), 4, lambda c: (1, c, 1, 1))),
                ("general", "N=1 x (1, 4, 3, 3), G = 4, gamma (C,)", *group(n(1, 4, 3, 3), 4, lambda c: (c,)))]
    if op == "cs231n.dropout":
        def dropout(x, p, mode, seed):
            return {"x": x}, {"mode": mode, "p": p}, ({"p": p, "mode": mode, "seed": seed},)
        return [*(("assignment", f"training x (100, 100) + 10, p {p}", *dropout(n(100, 100, shift=10), p, "train", 123))
                  for p in (0.25, 0.4, 0.7)),
                ("assignment", "backward x (10, 10) + 10, p 0.2, seed 123", *dropout(n(10, 10, shift=10), 0.2, "train", 123)),
                ("test mode", "test mode x (10, 10) + 10, p 0.4", *dropout(n(10, 10, shift=10), 0.4, "test", 123))]
    if op in ("cs231n.softmax_loss", "cs231n.svm_loss"):
        def loss(n_, c, scale):
            return {"x": n(n_, c, scale=scale), "y": torch.randint(0, c, (n_,), generator=draw.generator)}, {}, ()
        large = [("large logits", "scores of about 1000, x (5, 4)", *loss(5, 4, 1000.0))] \
            if op == "cs231n.softmax_loss" else []
        return [("assignment", "x (50, 10) = 0.001 randn", *loss(50, 10, 0.001)), *large,
                ("general", "N=1 x (1, 5)", *loss(1, 5, 1.0))]
    raise ValueError(f"no cases for {op}")


def calls(function, settings) -> list[Call]:
    """The calls of one function of the cs231n form (see the module doc), the decisive ones first."""
    draw = Draw(settings.seed)
    found = []
    for case, label, inputs, options, extra in _cases(function.op, draw):
        args = tuple(ref(name) for name in inputs if name not in ("running_mean", "running_var")) + extra
        if function.op == "cs231n.dropout" and function.kind == "backward" and "backward" not in label \
                and options["mode"] == "train":
            continue    # the statistics need the large inputs, the backward its own case
        if function.op == "cs231n.dropout" and function.kind == "forward" and "backward" in label:
            continue
        if function.kind == "backward" and options.get("mode") == "test":
            continue    # a test-mode forward's cache is not for a backward
        call = Call(label, case, function.op, inputs, options, args, stage="graded" if case in DECISIVE else "sizes",
                    shapes="graded" if case in DECISIVE else "small",
                    updates=("running_mean", "running_var") if "running_mean" in inputs and options["mode"] == "train"
                    else ())
        if function.kind == "loss":
            call = replace(call, grad=function.grads, grad_output=torch.tensor(1.0, dtype=torch.float64))
        elif function.kind == "backward":
            shape = inputs["x"].shape if function.op == "cs231n.dropout" else _native_shape(call)
            call = replace(call, grad=function.grads, grad_output=_normal(draw, *shape))
        found.append(call)
    return found


def _native_shape(call: Call) -> tuple:
    from ..forms import native_call
    with torch.no_grad():
        return tuple(native_call(call.op, {k: v.clone() for k, v in call.inputs.items()}, call.options).shape)


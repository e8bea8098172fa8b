"""Native PyTorch's answers for seed 003's layers and update rule, and the update rules students write instead.

The layers (pooling, ReLU, inner product, convolution) are computed on the checker's NCHW tensors
with torch.nn.functional, their backward passes with autograd of the same forward, back-propagating
the handout's ``output['diff']``: the handouts' backward passes return the gradients summed over the
batch, which is what autograd of a sum gives. :mod:`.columns` turns them into the handouts' columns.

The update, ``sgd_momentum`` (seed 003 section 5.5): for each layer's w and b,

    winc = mu winc + rate (grad + decay w),    w = w - winc

with the decay on w alone and, in 10-601, b's own rate (``b_rate``). torch.optim.SGD keeps
buf = mu buf + (grad + decay w) and steps w -= lr buf: the same step for a momentum buffer of
winc / rate, so one step of it is the oracle (``rate`` > 0; the handout's schedule folds the rate
into the increment, so the two part only when the rate changes between steps). ``sgd_variant`` is
the rule with one convention changed, for the diagnoses. ``get_lr`` is the handout's "inv" policy,
epsilon (1 + gamma step)^-power, by the formula.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F


class Layer(NamedTuple):
    """A seed 003 layer: the checker's op it computes, and whether it has parameters (w, b)."""

    op: str
    parameters: bool


LAYERS = {"conv": Layer("conv2d", True), "pooling": Layer("max_pool2d", False), "relu": Layer("relu", False),
          "inner_product": Layer("linear", True)}


def _native(kind: str, x, weight, bias, options: dict):
    if kind == "conv":
        return F.conv2d(x, weight, bias, stride=options["stride"], padding=options["pad"])
    if kind == "pooling":
        return F.max_pool2d(x, options["k"], stride=options["stride"])
    if kind == "relu":
        return F.relu(x)
    return F.linear(x, weight, bias)


def layer_truth(kind: str, x: torch.Tensor, weight=None, bias=None, diff=None, options=None) -> dict:
    """Native's forward of layer ``kind`` on x (NCHW, or [N, inputs] for an inner product) and, given ``diff`` (the
    output's gradient, shaped as the output), autograd's gradients: {"out", "input_od", "w", "b"} in torch's
    shapes (w, b only for layers with parameters), float64."""
    options = options or {}
    leaves = [t.detach().to(torch.float64).requires_grad_(diff is not None) if t is not None else None
              for t in (x, weight, bias)]
    out = _native(kind, *leaves, options)
    truth = {"out": out.detach()}
    if diff is not None:
        wanted = [t for t in leaves if t is not None]
        grads = torch.autograd.grad(out, wanted, diff.to(torch.float64))
        truth.update(zip(("input_od", "w", "b")[:len(grads)], grads))
    return truth


class Update(NamedTuple):
    """What one sgd_momentum step does: {layer: {"w", "b"}} of the new parameters and increments."""

    params: dict
    winc: dict


def sgd_truth(w_rate: float, b_rate: float, mu: float, decay: float, params: dict, winc: dict, grad: dict) -> Update:
    """One step of torch.optim.SGD (momentum ``mu``, weight decay on w alone), each layer's w at ``w_rate`` and b at
    ``b_rate``, its momentum buffers seeded with winc / rate: the handout's update (see the module doc)."""
    if w_rate <= 0 or b_rate <= 0:
        raise ValueError(f"rates: expected w_rate and b_rate > 0 (the momentum buffer is winc / rate), "
                         f"got {w_rate} and {b_rate}")
    new_params, new_winc = {}, {}
    for key, layer in params.items():
        tensors = {part: torch.as_tensor(layer[part], dtype=torch.float64).clone().requires_grad_()
                   for part in ("w", "b")}
        optimizer = torch.optim.SGD([{"params": [tensors["w"]], "lr": w_rate, "weight_decay": decay},
                                     {"params": [tensors["b"]], "lr": b_rate, "weight_decay": 0.0}],
                                    lr=w_rate, momentum=mu)
        for part, rate in (("w", w_rate), ("b", b_rate)):
            tensors[part].grad = torch.as_tensor(grad[key][part], dtype=torch.float64).clone()
            optimizer.state[tensors[part]]["momentum_buffer"] = torch.as_tensor(
                winc[key][part], dtype=torch.float64).clone() / rate
        optimizer.step()
        new_params[key] = {part: t.detach() for part, t in tensors.items()}
        new_winc[key] = {part: optimizer.state[tensors[part]]["momentum_buffer"] * rate
                         for part, rate in (("w", w_rate), ("b", b_rate))}
    return Update(new_params, new_winc)


# The ways students write the update instead: each changes one convention of the handout's.
SGD_VARIANTS = {
    "decay missing": "no weight decay: w's increment lacks rate * decay * w",
    "decay on bias": "weight decay applied to the bias too (the handout decays w alone)",
    "momentum after step": "the step uses the previous increment (momentum applied after the step): "
                           "w = w - winc, then winc = mu winc + rate grad",
    "rates swapped": "w updated at b's rate and b at w's: the learning rates swapped",
}


def sgd_variant(name: str | None, w_rate: float, b_rate: float, mu: float, decay: float, params: dict, winc: dict,
                grad: dict) -> Update:
    """The update by the formula, the handout's (``name`` None) or with the convention SGD_VARIANTS[name] changed."""
    if name is not None and name not in SGD_VARIANTS:
        raise ValueError(f"name: expected one of {', '.join(SGD_VARIANTS)} or None, got {name!r}")
    rates = {"w": b_rate, "b": w_rate} if name == "rates swapped" else {"w": w_rate, "b": b_rate}
    decays = {"w": 0.0 if name == "decay missing" else decay, "b": decay if name == "decay on bias" else 0.0}
    new_params, new_winc = {}, {}
    for key, layer in params.items():
        new_params[key], new_winc[key] = {}, {}
        for part in ("w", "b"):
            value = torch.as_tensor(layer[part], dtype=torch.float64)
            old = torch.as_tensor(winc[key][part], dtype=torch.float64)
            step = mu * old + rates[part] * (torch.as_tensor(grad[key][part], dtype=torch.float64)
                                             + decays[part] * value)
            new_winc[key][part] = step
            new_params[key][part] = value - (old if name == "momentum after step" else step)
    return Update(new_params, new_winc)


def get_lr(step: float, epsilon: float, gamma: float, power: float) -> float:
    """The handout's learning rate at a step: epsilon / (1 + gamma step)^power."""
    return epsilon / math.pow(1 + gamma * step, power)

"""Where the time of a step goes, layer by layer, for any model.

Each entry of the model's ``layers()`` table (batch norm included) and the nll loss is fed its
real input: the previous layer's output on a training batch, computed once with the native ops
so every impl gets the same one, as a leaf that requires grad (the image excepted, as in
training). Its forward is timed, then its backward with a fixed random upstream gradient.
Rounds are interleaved (:mod:`.core`); round 0 warms every layer up and is not kept; the
medians of the other ``rounds`` are reported.
"""

from __future__ import annotations

import statistics

import torch

from simple_conv_net.backends import get_ops

from .core import clock, interleaved


def layer_inputs(model, images: torch.Tensor) -> list[torch.Tensor]:
    """The input of every layer of the table, and last the log-probabilities (the loss's input)."""
    inputs, a = [], images
    native = get_ops("torch")
    with torch.no_grad():
        for _, _, fn in model.layers():
            inputs.append(a)
            a = fn(native, a)
    inputs.append(a)
    return inputs


def profile(models: dict, images, labels, rounds: int, device: torch.device, seed: int) -> dict:
    """{impl: {layer: {"forward_ms", "backward_ms"}}}, medians over ``rounds`` interleaved rounds.

    ``models``: {impl: (model, optimizer)} of one point, all in training mode.
    """
    first = next(iter(models.values()))[0]
    inputs = layer_inputs(first, images)
    generator = torch.Generator().manual_seed(seed)
    names = [name for name, _, _ in first.layers()] + ["nll_loss"]
    grads = [torch.randn(inputs[i + 1].shape, generator=generator).to(device) for i in range(len(names) - 1)]
    grads.append(torch.ones((), device=device))

    def one_round(impl):
        model = models[impl][0]
        fns = [fn for _, _, fn in model.layers()] + [lambda ops, a: ops.nll_loss(a, labels)]

        def run():
            times = {}
            for index, (name, fn) in enumerate(zip(names, fns)):
                a = inputs[index].detach().requires_grad_(index > 0)
                out = []
                forward = clock(lambda: out.append(fn(model.ops, a)), device)
                backward = clock(lambda: out[0].backward(grads[index]), device)
                model.zero_grad(set_to_none=True)
                times[name] = (forward, backward)
            return times

        return run

    samples = interleaved({impl: one_round(impl) for impl in models}, rounds + 1)
    return {impl: {name: {"forward_ms": 1e3 * statistics.median(r[name][0] for r in kept[1:]),
                          "backward_ms": 1e3 * statistics.median(r[name][1] for r in kept[1:])}
                   for name in names}
            for impl, kept in samples.items()}

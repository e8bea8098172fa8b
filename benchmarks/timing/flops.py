"""The physical bound: floating-point operations of a training step, from the shapes, over the
machine's measured matrix-multiply rate.

Which op each layer of a model's ``layers()`` table runs is found by running the layer on a
recording copy of the native ops, so the count works for every model, batch norm included.
Counts per op (N the batch, ``products`` the multiply-adds of a weighted sum):

    conv2d       forward 2*products (+ the bias per output); backward: the weight gradient as much
                 again, and the input gradient as much again only where the input needs one (the
                 image does not: the first layer with parameters has no input gradient)
    linear       the same rule, products = N*D*P
    max_pool2d   forward (window - 1) comparisons per output, backward one add per output
    relu         one per element each way
    log_softmax  five per element forward (max, sub, exp, sum, log/sub), four backward
    batch_norm   seven per element forward (mean, variance, normalise, scale and shift), eight backward
    nll_loss     N each way; the SGD step 4 per parameter (buf = m*buf + g; p -= lr*buf)
"""

from __future__ import annotations

import torch

from simple_conv_net.backends import NATIVE, Ops

from .core import clock

GEMM_SIZE = 1024


def _recording_ops(calls: list):
    """The native ops, each appending (op name, args, kwargs) to ``calls`` before it runs."""

    def recorder(name, op):
        def run(*args, **kwargs):
            calls.append((name, args, kwargs))
            return op(*args, **kwargs)

        return run

    return Ops(*(recorder(name, op) for name, op in zip(Ops._fields, NATIVE)))


def _layer_flops(op: str, args, kwargs, out: torch.Tensor, needs_input_grad: bool) -> tuple[int, int]:
    """(forward, backward) floating-point operations of one layer (see the module doc)."""
    if op in ("conv2d", "linear"):
        x, weight = args[0], args[1]
        has_bias = (args[2] if len(args) > 2 else kwargs.get("bias")) is not None
        if op == "conv2d":
            products = out.numel() * weight[0].numel()             # N*C_out*H_out*W_out * C_in*K_h*K_w
        else:
            products = x.numel() // x.shape[-1] * weight.numel()   # N * P*D
        bias = out.numel() if has_bias else 0
        forward = 2 * products + bias
        return forward, forward + (2 * products if needs_input_grad else 0)
    if op == "max_pool2d":
        kernel = kwargs.get("kernel_size", args[1] if len(args) > 1 else None)
        k_h, k_w = (kernel, kernel) if isinstance(kernel, int) else kernel
        return out.numel() * (k_h * k_w - 1), out.numel()
    if op == "relu":
        return out.numel(), out.numel()
    if op == "log_softmax":
        return 5 * out.numel(), 4 * out.numel()
    if op == "batch_norm":
        return 7 * out.numel(), 8 * out.numel()
    return 0, 0                                                    # flatten moves values only


def count_flops(model, images: torch.Tensor) -> dict:
    """{"per_layer": {name: {forward, backward}}, "total_per_step", "parameters"} for one training step."""
    n = images.shape[0]
    layers, a, needs_input_grad = {}, images, False
    with torch.no_grad():
        for name, module_name, fn in model.layers():
            calls = []
            out = fn(_recording_ops(calls), a)
            op, args, kwargs = calls[0]
            forward, backward = _layer_flops(op, args, kwargs, out, needs_input_grad)
            layers[name] = {"op": op, "forward": forward, "backward": backward}
            needs_input_grad = needs_input_grad or module_name is not None
            a = out
    layers["nll_loss"] = {"op": "nll_loss", "forward": n, "backward": n}
    parameters = sum(p.numel() for p in model.parameters())
    layers["sgd_step"] = {"op": "sgd", "forward": 0, "backward": 4 * parameters}
    total = sum(v["forward"] + v["backward"] for v in layers.values())
    return {"per_layer": layers, "total_per_step": total, "parameters": parameters}


def gemm_rate(device: torch.device, size: int = GEMM_SIZE, calls: int = 5) -> float:
    """float32 FLOP/s of a square GEMM (mean over ``calls`` after one untimed call)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    c = torch.empty(size, size, device=device)
    torch.mm(a, b, out=c)

    def work():
        for _ in range(calls):
            torch.mm(a, b, out=c)

    return 2 * size**3 * calls / clock(work, device)

"""Kinks: where a gradient that differs from PyTorch's is still a valid subgradient.

ReLU at exactly 0 and a max-pool window with tied maxima are kinks: PyTorch picks one subgradient
(ReLU'(0) = 0, the first maximum in window order), and any other in the set is as correct. A
candidate's gradient that matches native's everywhere else, and is a valid subgradient there,
passes its gradient check with a note (:func:`kink_note`) instead of failing it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..compare import compare
from .text import number, pair


def _window_view(tensor: torch.Tensor, options: dict, pad_value: float) -> torch.Tensor | None:
    """[N*C, K_h*K_w, L]: every pooling window of ``tensor`` [N, C, H, W], padded with ``pad_value``;
    None for overlapping windows (an input element belongs to several), and for dilated windows or ceil_mode's
    partial ones, which this view does not draw."""
    kernel = pair(options["kernel_size"])
    stride = pair(options.get("stride") or kernel)
    padding = pair(options.get("padding", 0))
    if stride[0] < kernel[0] or stride[1] < kernel[1] or pair(options.get("dilation", 1)) != (1, 1) \
            or options.get("ceil_mode"):
        return None
    n, c, h, w = tensor.shape
    padded = F.pad(tensor.reshape(n * c, 1, h, w), (padding[1], padding[1], padding[0], padding[0]),
                   value=pad_value)
    return F.unfold(padded, kernel, stride=stride)


def _tie_note(s, name: str, grad: torch.Tensor) -> str | None:
    """Max pooling: the candidate's gradient is a valid subgradient that differs from native's at ties only."""
    x = s.call.inputs["input"].double()
    windows = _window_view(x, s.call.options, float("-inf"))
    if windows is None or grad.shape != x.shape:
        return None
    ours = _window_view(grad.double(), s.call.options, 0.0)
    truth = _window_view(s.truth.exact.grads[name], s.call.options, 0.0)
    is_max = windows == windows.max(1, keepdim=True).values
    upstream = truth.sum(1, keepdim=True)                 # each window's upstream gradient
    ties = is_max.sum(1) > 1
    # Valid: nothing outside the maxima, the maxima share the upstream gradient with weights in [0, 1].
    outside = compare(torch.zeros_like(ours), torch.where(is_max, 0.0, ours), dtype=s.truth.dtype)
    sums = compare(upstream, ours.sum(1, keepdim=True), dtype=s.truth.dtype)
    share = torch.where(is_max & (upstream != 0), ours / upstream.where(upstream != 0, 1.0), 0.5)
    if not (outside.passed and sums.passed and (share >= -1e-6).all() and (share <= 1 + 1e-6).all() and ties.any()):
        return None
    differ = int((((ours - truth).abs() > 0).any(1) & ties).sum())
    return (f"max pooling: in {differ} of {int(ties.sum())} windows with tied maxima the gradient goes to another "
            f"maximum than PyTorch's, which takes the first in window order; any of them, or shares among them, "
            f"is a valid subgradient")


def _relu_note(s, name: str, grad: torch.Tensor) -> str | None:
    x = s.call.inputs["input"]
    kink = x == 0
    truth = s.truth.exact.grads[name]
    if not kink.any() or grad.shape != truth.shape:
        return None
    elsewhere = compare(truth[~kink], grad[~kink], dtype=s.truth.dtype)
    upstream = s.call.grad_output.double()[kink]
    slopes = grad.double()[kink][upstream != 0] / upstream[upstream != 0]
    if not elsewhere.passed or not len(slopes) or (slopes < -1e-6).any() or (slopes > 1 + 1e-6).any():
        return None
    values = sorted({round(v, 6) for v in slopes.tolist()})
    shown = number(values[0]) if len(values) == 1 else f"values from {number(values[0])} to {number(values[-1])}"
    return f"ReLU'(0) = {shown} here, PyTorch uses 0: any value in [0, 1] is a valid subgradient at the kink"


def kink_note(s, name: str, grad: torch.Tensor) -> str | None:
    """A note when a gradient that does not match native's is still a valid subgradient at a kink, else None."""
    if s.call.op == "relu":
        return _relu_note(s, name, grad)
    if s.call.op == "max_pool2d":
        return _tie_note(s, name, grad)
    return None

"""The ops backends a model can run on: native PyTorch, vectorized, or scalar loops.

Every backend offers the same eight ops with the signatures of torch.nn.functional
(flatten: torch.flatten's, which merges every dim by default), so a model is written once
and ``impl`` picks the implementation::

    ops = get_ops("vector")
    y = ops.conv2d(x, w, b, stride=1, padding=0)
"""

from __future__ import annotations

import importlib
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

IMPLS = ("torch", "vector", "scalar")


class Ops(NamedTuple):
    conv2d: Callable
    max_pool2d: Callable
    relu: Callable
    linear: Callable
    flatten: Callable
    log_softmax: Callable
    nll_loss: Callable
    batch_norm: Callable


NATIVE = Ops(F.conv2d, F.max_pool2d, F.relu, F.linear, torch.flatten, F.log_softmax, F.nll_loss, F.batch_norm)


def check_impl(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f"argument 'impl' expected one of {IMPLS}, got {impl!r}")
    return impl


def get_ops(impl: str) -> Ops:
    """The ops of one implementation: 'torch' (torch.nn.functional itself), 'vector' or 'scalar'."""
    if check_impl(impl) == "torch":
        return NATIVE
    module = importlib.import_module(f"{impl}_ops")  # scalar_ops imports numba: load it only when asked
    return Ops(*(getattr(module, name) for name in Ops._fields))

"""How close a candidate's array is to the truth: the relative error, and the tolerances of the cs231n form."""

from __future__ import annotations

import math

import torch

from ..forms.cs231n import CONVENTION, EQUAL

__all__ = ["CONVENTION", "EQUAL", "close", "relative"]


def relative(candidate: torch.Tensor, truth: torch.Tensor) -> float:
    """max |candidate - truth| over max |truth| (absolute where the truth is all 0); inf where not finite."""
    if not torch.isfinite(candidate).all():
        return math.inf
    scale = truth.abs().max().item() if truth.numel() else 0.0
    error = (candidate - truth).abs().max().item() if truth.numel() else 0.0
    return error / scale if scale > 0 else error


def close(candidate, truth, limit: float = CONVENTION) -> bool:
    return candidate is not None and truth is not None and tuple(candidate.shape) == tuple(truth.shape) and \
        relative(candidate.to(torch.float64), truth.to(torch.float64)) <= limit


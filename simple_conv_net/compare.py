"""One definition of "matches": how far a candidate tensor is from the truth, and whether that is close enough.

Every comparison in the project goes through :func:`compare`: the parity report, the tests, the
finite-difference check and the checker of other people's code.

The truth
    Native PyTorch's result, computed in float64 from the candidate's own inputs (upcast, so no
    rounding of the inputs differs). A float32 candidate is judged against it, not against native
    float32, whose own rounding error grows with the length of its sums: at batch 1000, native
    float32's conv weight gradient is 3e-5 from the float64 truth, a correct float32 candidate
    anywhere from 3e-7 to 2e-5 - the two disagree with each other by more than either is wrong.

The measure
    max_rel = max |candidate - truth| / max |truth|

    relative to the largest truth value, so entries near zero do not blow it up. Non-finite entries
    must match exactly (NaN where the truth is NaN, the same infinity where it is infinite); the rest
    are measured on the finite entries. diff_mse (the homework's measure: the mean squared difference)
    and max_abs are reported beside it.

    Overflow belongs to the dtype, not to the impl, so the truth is taken as the candidate's dtype can
    hold it (:func:`attainable`): an entry beyond that dtype's range is the infinity it rounds to, and
    where native PyTorch in that dtype overflowed on the way (a non-finite entry where the float64
    truth is finite), its value is what the candidate must reproduce, exactly.

The tolerance (:func:`tolerance`)
    float64: 1e-10 (measured errors are ~1e-15).
    float32: max(1e-5, NATIVE_SLACK * native_rel), where native_rel is native float32 PyTorch's own
    max_rel against the same truth, when the caller has it. 1e-5 is about 80 units in the last place
    of the largest value: room for any correct summation order over thousands of terms, five orders
    below what an index, sign or transpose error gives (order 1). Where the sums are so long that
    PyTorch's own float32 result is further than that from the truth (batch 1000 and up), a candidate
    as accurate as PyTorch, within NATIVE_SLACK, passes too: no batch size flags correct code, and a
    broken op, wrong by order 1, still fails.

    Cancellation: rounding errors are relative to the terms a sum adds up, not to the sum. Where the
    terms nearly cancel (an output of 0.004 from terms of size 1), any correct summation order may be
    1e-7 off, which is 3e-5 of the result. So where the caller gives the magnitude of the terms (for a
    bilinear op such as conv2d or linear, the op applied to the absolute values of its inputs, each
    entry the sum of its terms' absolute values), the tolerance applies at the larger of the two
    scales: it is multiplied by ``condition = max|magnitude| / max|truth|`` where that exceeds 1. The
    argument for 1e-5 is unchanged (80 units in the last place, now of the terms), and an index, sign
    or transpose error, wrong by the size of the terms, still fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
NATIVE_SLACK = 4.0


def tolerance(dtype: torch.dtype, native_rel: float | None = None, condition: float = 1.0) -> float:
    """The max_rel a candidate of ``dtype`` may reach (see the module doc); ``condition``: the terms'
    magnitude over the truth's, where the caller knows it."""
    if dtype not in TOLERANCE:
        raise ValueError(f"compare: expected a float32 or float64 candidate, got dtype {dtype}")
    base = TOLERANCE[dtype] * max(1.0, condition)
    if native_rel is None or dtype == torch.float64 or not math.isfinite(native_rel):
        return base
    return max(base, NATIVE_SLACK * native_rel)


@dataclass(frozen=True)
class Comparison:
    """How far a candidate is from the truth. Indices are into the tensor's shape; values are (candidate, truth)."""

    shape: tuple
    diff_mse: float
    max_abs: float
    max_rel: float
    tolerance: float
    native_rel: float | None = None   # native PyTorch's own max_rel in the candidate's dtype, if known
    problem: str | None = None        # why the candidate cannot match at all (shape, non-finite entries)
    worst: tuple | None = None        # (index, candidate value, truth value) of the largest error
    first: tuple | None = None        # the same for the first entry, in row-major order, beyond the tolerance
    beyond: torch.Tensor | None = field(default=None, repr=False, compare=False)  # bool mask of those entries

    @property
    def passed(self) -> bool:
        return self.problem is None and self.max_rel <= self.tolerance  # a NaN max_rel fails


def unravel(index: int, shape) -> tuple:
    """The position of entry ``index`` of a row-major tensor of ``shape`` (torch.unravel_index's, without its first
    call's import of sympy: a second or more)."""
    position = []
    for size in reversed(tuple(shape)):
        index, at = divmod(index, size)
        position.append(at)
    return tuple(reversed(position))


def _entry(index: int, shape: tuple, candidate: torch.Tensor, truth: torch.Tensor) -> tuple:
    position = unravel(index, shape)
    return position, candidate[index].item(), truth[index].item()


def _flat64(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().reshape(-1).to(device="cpu", dtype=torch.float64)


def _errors(t: torch.Tensor, c: torch.Tensor):
    """|c - t| entry by entry (flat float64), the scale max |t| over finite t, and the mask of the
    non-finite truth entries the candidate does not reproduce (None when every entry is finite).

    Where the truth is finite, |c - t| is already inf or NaN for a non-finite candidate; where it is
    not, the entry is left out of the measure (0) and must match exactly instead.
    """
    diff = (c - t).abs_()
    if bool(torch.isfinite(diff).all()):                      # the common case: one pass more, no masks
        return diff, t.abs().max().item(), None
    special = ~torch.isfinite(t)
    unmatched = special & (c != t) & ~(c.isnan() & t.isnan())
    diff.masked_fill_(special, 0.0)
    scale = t.abs().masked_fill_(special, 0.0).max().item()
    return diff, scale, unmatched


def attainable(truth: torch.Tensor, dtype: torch.dtype, native: torch.Tensor | None = None) -> torch.Tensor:
    """The flat float64 truth as a ``dtype`` computation can reach it (see the module doc): entries beyond
    the dtype's range become the infinity they round to, and where ``native`` (native PyTorch's result in
    that dtype, flat float64) is not finite but the truth is, native's value."""
    t = _flat64(truth)
    if dtype == torch.float64 or not dtype.is_floating_point:
        return t
    beyond = t.abs() > torch.finfo(dtype).max
    if bool(beyond.any()):
        t = torch.where(beyond, t.to(dtype).double(), t)
    if native is not None:
        overflowed = torch.isfinite(t) & ~torch.isfinite(native)
        if bool(overflowed.any()):
            t = torch.where(overflowed, native, t)
    return t


def _max_rel(t: torch.Tensor, c: torch.Tensor) -> float:
    diff, scale, _ = _errors(t, c)
    max_abs = diff.max().item()                               # NaN if any entry is NaN
    return max_abs / scale if scale > 0 else max_abs


def relative_error(truth: torch.Tensor, candidate: torch.Tensor) -> float:
    """max_rel of ``candidate`` against ``truth`` (same shape), non-finite entries that agree left out."""
    if truth.numel() == 0:
        return 0.0
    return _max_rel(attainable(truth, candidate.dtype), _flat64(candidate))


def _condition(magnitude: torch.Tensor | None, scale: float) -> float:
    """max |magnitude| over its finite entries / the truth's scale (1 without a magnitude or a scale)."""
    if magnitude is None or scale <= 0:
        return 1.0
    m = _flat64(magnitude).abs()
    m = m[torch.isfinite(m)]
    return m.max().item() / scale if m.numel() else 1.0


def compare(truth: torch.Tensor, candidate: torch.Tensor, native: torch.Tensor | None = None,
            dtype: torch.dtype | None = None, magnitude: torch.Tensor | None = None) -> Comparison:
    """Compare ``candidate`` with ``truth`` (best in float64: see the module doc).

    ``native``: native PyTorch's result in the candidate's dtype, from the same inputs; its own error
    against the truth widens a float32 tolerance (see :func:`tolerance`), and where it overflowed the
    candidate must too. ``dtype``: the dtype whose tolerance applies (default: the candidate's).
    ``magnitude``: for each entry, the sum of the absolute values of the terms it adds up (float64, the
    truth's shape), where the caller can compute it: the tolerance then holds at the terms' scale where
    they cancel (see the module doc).
    """
    dtype = dtype or candidate.dtype
    if tuple(truth.shape) != tuple(candidate.shape):
        return Comparison(tuple(candidate.shape), float("nan"), float("nan"), float("nan"), tolerance(dtype),
                          problem=f"shape {tuple(candidate.shape)}, expected {tuple(truth.shape)}")
    shape = tuple(truth.shape)
    if truth.numel() == 0:
        return Comparison(shape, 0.0, 0.0, 0.0, tolerance(dtype), beyond=torch.zeros(shape, dtype=torch.bool))
    n = None if native is None else _flat64(native)
    t, c = attainable(truth, dtype, n), _flat64(candidate)
    native_rel = None if n is None else _max_rel(t, n)
    diff, scale, unmatched = _errors(t, c)
    limit = tolerance(dtype, native_rel, _condition(magnitude, scale))
    problem = None
    if unmatched is not None and bool(unmatched.any()):
        index = int(unmatched.byte().argmax())                # the first unmatched entry
        problem = (f"{int(unmatched.sum())} non-finite entries differ, first at {_entry(index, shape, c, t)[0]}: "
                   f"{c[index].item()} where the truth is {t[index].item()}")
    nan_diff = diff.isnan()
    has_nan = bool(nan_diff.any())
    max_abs = float("nan") if has_nan else diff.max().item()
    max_rel = max_abs / scale if scale > 0 else max_abs
    diff_mse = diff.square().mean().item()

    worst_index = int(nan_diff.byte().argmax()) if has_nan else int(diff.argmax())
    beyond = diff > limit * (scale if scale > 0 else 1.0)
    if has_nan:
        beyond |= nan_diff
    if problem is not None:
        beyond |= unmatched
    first = _entry(int(beyond.byte().argmax()), shape, c, t) if bool(beyond.any()) else None
    return Comparison(shape, diff_mse, max_abs, max_rel, limit, native_rel, problem,
                      _entry(worst_index, shape, c, t), first, beyond.reshape(shape))

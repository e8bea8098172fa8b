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

The tolerance (:func:`tolerance`)
    float64: 1e-10 (measured errors are ~1e-15).
    float32: max(1e-5, NATIVE_SLACK * native_rel), where native_rel is native float32 PyTorch's own
    max_rel against the same truth, when the caller has it. 1e-5 is about 80 units in the last place
    of the largest value: room for any correct summation order over thousands of terms, five orders
    below what an index, sign or transpose error gives (order 1). Where the sums are so long that
    PyTorch's own float32 result is further than that from the truth (batch 1000 and up), a candidate
    as accurate as PyTorch, within NATIVE_SLACK, passes too: no batch size flags correct code, and a
    broken op, wrong by order 1, still fails.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
NATIVE_SLACK = 4.0


def tolerance(dtype: torch.dtype, native_rel: float | None = None) -> float:
    """The max_rel a candidate of ``dtype`` may reach (see the module doc)."""
    if dtype not in TOLERANCE:
        raise ValueError(f"compare: expected a float32 or float64 candidate, got dtype {dtype}")
    base = TOLERANCE[dtype]
    if native_rel is None or dtype == torch.float64:
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


def _entry(index: int, shape: tuple, candidate: torch.Tensor, truth: torch.Tensor) -> tuple:
    position = tuple(int(i) for i in torch.unravel_index(torch.tensor(index), shape)) if shape else ()
    return position, candidate[index].item(), truth[index].item()


def relative_error(truth: torch.Tensor, candidate: torch.Tensor) -> float:
    """max_rel of ``candidate`` against ``truth`` (same shape), non-finite entries that agree left out."""
    return compare(truth, candidate).max_rel


def compare(truth: torch.Tensor, candidate: torch.Tensor, native: torch.Tensor | None = None,
            dtype: torch.dtype | None = None) -> Comparison:
    """Compare ``candidate`` with ``truth`` (best in float64: see the module doc).

    ``native``: native PyTorch's result in the candidate's dtype, from the same inputs; its own error
    against the truth widens a float32 tolerance (see :func:`tolerance`). ``dtype``: the dtype whose
    tolerance applies (default: the candidate's).
    """
    dtype = dtype or candidate.dtype
    if tuple(truth.shape) != tuple(candidate.shape):
        return Comparison(tuple(candidate.shape), float("nan"), float("nan"), float("nan"), tolerance(dtype),
                          problem=f"shape {tuple(candidate.shape)}, expected {tuple(truth.shape)}")
    shape = tuple(truth.shape)
    t = truth.detach().reshape(-1).double().cpu()
    c = candidate.detach().reshape(-1).double().cpu()
    native_rel = None if native is None else relative_error(truth, native)
    limit = tolerance(dtype, native_rel)
    if t.numel() == 0:
        return Comparison(shape, 0.0, 0.0, 0.0, limit, native_rel, beyond=torch.zeros(shape, dtype=torch.bool))

    finite = torch.isfinite(t)
    same_special = (~finite) & ((c == t) | (c.isnan() & t.isnan()))
    unmatched = (~finite) & ~same_special
    diff = torch.where(finite, c - t, torch.zeros((), dtype=t.dtype)).abs()
    diff = torch.where(finite & ~torch.isfinite(c), torch.full((), float("inf"), dtype=t.dtype), diff)
    diff = torch.where(finite & c.isnan(), torch.full((), float("nan"), dtype=t.dtype), diff)

    problem = None
    if unmatched.any():
        index = int(unmatched.nonzero()[0])
        problem = (f"{int(unmatched.sum())} non-finite entries differ, first at {_entry(index, shape, c, t)[0]}: "
                   f"{c[index].item()} where the truth is {t[index].item()}")
    scale = t[finite].abs().max().item() if finite.any() else 0.0
    nan_diff = diff.isnan()
    max_abs = float("nan") if nan_diff.any() else diff.max().item()
    max_rel = max_abs / scale if scale > 0 else max_abs
    diff_mse = (diff ** 2).mean().item()

    worst_index = int(nan_diff.nonzero()[0]) if nan_diff.any() else int(diff.argmax())
    beyond = nan_diff | (diff > limit * (scale if scale > 0 else 1.0)) | unmatched
    first = _entry(int(beyond.nonzero()[0]), shape, c, t) if beyond.any() else None
    return Comparison(shape, diff_mse, max_abs, max_rel, limit, native_rel, problem,
                      _entry(worst_index, shape, c, t), first, beyond.reshape(shape))

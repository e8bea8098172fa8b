"""The timing core every part of the benchmark uses.

Two rules, written once here:

* a measured interval is bracketed by device synchronisations (:func:`clock`), so on a GPU it
  covers the work the interval queued and not just its launch;
* implementations are compared in interleaved rounds (:func:`interleaved`): every round runs
  every task once, and the order rotates by one from round to round, so a noisy neighbour on a
  shared machine, or a warm cache left by the previous task, falls on every task alike.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, TypeVar

import torch

T = TypeVar("T")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def clock(work: Callable[[], object], device: torch.device) -> float:
    """Seconds that ``work()`` takes, from a synchronised device to a synchronised device."""
    synchronize(device)
    start = time.perf_counter()
    work()
    synchronize(device)
    return time.perf_counter() - start


def rotated(names: list[str], round_index: int) -> list[str]:
    """``names`` rotated left by ``round_index`` (round 0 keeps the given order)."""
    shift = round_index % len(names) if names else 0
    return names[shift:] + names[:shift]


def interleaved(tasks: dict[str, Callable[..., T]], rounds: int,
                prepare: Callable[[int], object] | None = None) -> dict[str, list[T]]:
    """``{name: [result of each round]}``: every round calls every task once, in rotated order.

    ``prepare(round_index)``, when given, is called once at the start of each round and its
    value passed to every task of that round (the batches of the round, say), so the tasks of
    one round do the same work.
    """
    names = list(tasks)
    results: dict[str, list[T]] = {name: [] for name in names}
    for index in range(rounds):
        shared = () if prepare is None else (prepare(index),)
        for name in rotated(names, index):
            results[name].append(tasks[name](*shared))
    return results


def stats(values) -> dict:
    """min, median, max and every value (the JSON keeps them all)."""
    values = list(values)
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "all": values}

"""What the checker is doing, for the person waiting: a slow check never looks hung.

On a terminal, one line redrawn every second: the submission, how many functions are done, and for
each function running now the call it runs, which of how many, the seconds it has taken and the
plan's estimate of its total (:mod:`.schedule`). Off a terminal (a log, a CI job), plain lines: one
per function checked (``per_function``), or none (a batch prints one per submission itself).
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from dataclasses import dataclass


@dataclass
class Running:
    label: str
    index: int           # which call, from 1
    count: int           # of how many the plan runs now
    started: float       # when the function started (time.monotonic)
    estimate: float      # the plan's estimate of the function's seconds, all told


class Progress:
    """See the module doc. Thread-safe: the functions of a submission are checked in threads."""

    TICK = 1.0

    def __init__(self, stream=None, live: bool | None = None, per_function: bool = True) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.per_function = per_function
        self.lock = threading.Lock()
        self.running: dict[str, Running] = {}
        self.what, self.done, self.total = "", 0, 0
        self._stop = threading.Event()
        self._ticker = None

    def start(self, what: str, total: int) -> None:
        """A new target: ``what`` (its name) with ``total`` functions to check."""
        with self.lock:
            self.what, self.done, self.total, self.running = what, 0, total, {}
        if self.live and self._ticker is None:
            self._stop = threading.Event()
            self._ticker = threading.Thread(target=self._tick, daemon=True)
            self._ticker.start()

    def call(self, name: str, label: str, index: int, count: int, started: float, estimate: float) -> None:
        with self.lock:
            self.running[name] = Running(label, index, count, started, estimate)

    def finished(self, name: str, status: str, seconds: float, detail: str = "") -> None:
        with self.lock:
            self.running.pop(name, None)
            self.done += 1
            line = f"{self.what}: {name}: {status} in {seconds:.0f} s{f' ({detail})' if detail else ''}"
        if not self.live and self.per_function:
            self._print(line)

    def line(self) -> str:
        """The live line as it stands."""
        now = time.monotonic()
        with self.lock:
            parts = [f"{self.what}: {self.done}/{self.total} done"]
            for name, r in self.running.items():
                parts.append(f"{name} {r.label} (call {r.index}/{r.count}, {now - r.started:.0f} s of ~"
                             f"{max(r.estimate, now - r.started):.0f} s)")
        return " | ".join(parts)

    def _tick(self) -> None:
        while not self._stop.wait(self.TICK):
            self._draw()

    def _draw(self) -> None:
        width = shutil.get_terminal_size((100, 20)).columns
        text = self.line()
        text = text if len(text) < width else text[:width - 4] + "..."
        self._write(f"\r\x1b[K{text}")

    def clear(self) -> None:
        """Wipe the live line (before the score card, or a batch's line per submission)."""
        if self.live:
            self._write("\r\x1b[K")

    def close(self) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
            self._ticker = None
        self.clear()

    def _print(self, text: str) -> None:
        self.clear()
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):    # a closed or broken stream: the check goes on without it
            pass

    def say(self, text: str) -> None:
        """A line of its own (a batch's line per submission), on a terminal or off."""
        self._print(text)

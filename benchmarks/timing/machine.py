"""The machine a run measures on, and the thread settings, recorded before anything is timed.

The date and the load average at the start are taken by :func:`details` when the run begins
(a load average read after the measurement would describe the benchmark's own load);
:func:`load_average` is read again at the end.
"""

from __future__ import annotations

import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def _version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def details(device: torch.device) -> dict:
    """The machine, the software, the date and the load average, now (call it before measuring)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    machine = {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_version": torch.__version__,
        "numba_version": _version("numba"),
        "numpy_version": _version("numpy"),
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "device": str(device),
        "load_average_start": load_average(),
    }
    if device.type == "cuda":
        machine["cuda_device"] = torch.cuda.get_device_name(device)
    return machine


def set_threads(threads: int | None) -> None:
    """torch.set_num_threads(threads), and numba's count too once numba is loaded (None: leave both)."""
    if threads is None:
        return
    torch.set_num_threads(threads)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def thread_counts() -> dict:
    """The thread counts in force (numba's only when it is loaded)."""
    counts = {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads()}
    if "numba" in sys.modules:
        import numba

        counts["numba_threads"] = numba.get_num_threads()
        counts["numba_threading_layer"] = getattr(numba.config, "THREADING_LAYER", None)
    return counts

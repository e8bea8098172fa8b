"""Files written so that an interrupted run never leaves a half-written one behind.

Each writer puts the bytes in a temporary file beside the target, flushes them to disk,
then renames it over the target: a reader sees the old complete file or the new one. A process
killed mid-write (kill -9, power loss) cannot remove its temporary file; :func:`leftovers` finds
such files, for whoever next owns the directory to remove.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import torch

# The files of a run directory: train.py writes them, the report reads them.
CHECKPOINT, METRICS, FINAL_MODEL = "checkpoint.pt", "metrics.jsonl", "model.pt"

UMASK = os.umask(0o022)
os.umask(UMASK)  # read the process's umask (the only way is to set it), then put it back


@contextmanager
def atomic_file(path) -> Iterator[tuple[BinaryIO, Path]]:
    """Write ``path`` through a temporary file beside it: yields (binary handle, temporary path).

    Leaving the block normally flushes the file to disk and renames it to ``path``; an exception
    inside the block (a failed check of the written bytes, say, or Ctrl-C) removes it instead.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix, suffix = _temporary_affixes(path)
    fd, temporary = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=path.parent)
    temporary = Path(temporary)
    try:
        os.chmod(temporary, 0o666 & ~UMASK)  # mkstemp makes 0600; give what open() would
        with os.fdopen(fd, "wb") as handle:
            yield handle, temporary
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _temporary_affixes(path: Path) -> tuple[str, str]:
    """The temporary file of ``dir/name`` is ``dir/.name.<random>.tmp``."""
    return f".{path.name}.", ".tmp"


def leftovers(path) -> list[Path]:
    """The temporary files that interrupted writes of ``path`` left beside it. Remove them only while
    no other process can be writing ``path`` (a live writer's file looks the same)."""
    path = Path(path)
    prefix, suffix = _temporary_affixes(path)
    return sorted(path.parent.glob(f"{glob.escape(prefix)}*{glob.escape(suffix)}"))


def _atomic_write(path, write) -> Path:
    with atomic_file(path) as (handle, _):
        write(handle)
    return Path(path)


def atomic_write_bytes(path, data: bytes) -> Path:
    return _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path, text: str) -> Path:
    return _atomic_write(path, lambda handle: handle.write(text.encode()))


def atomic_torch_save(obj, path) -> Path:
    return _atomic_write(path, lambda handle: torch.save(obj, handle))

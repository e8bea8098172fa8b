"""Files written so that an interrupted run never leaves a half-written one behind.

Each writer puts the bytes in a temporary file beside the target, flushes them to disk,
then renames it over the target: a reader sees the old complete file or the new one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

UMASK = os.umask(0o022)
os.umask(UMASK)  # read the process's umask (the only way is to set it), then put it back


def _atomic_write(path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(temporary, 0o666 & ~UMASK)  # mkstemp makes 0600; give what open() would
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def atomic_write_bytes(path, data: bytes) -> Path:
    return _atomic_write(path, lambda handle: handle.write(data))


def atomic_write_text(path, text: str) -> Path:
    return _atomic_write(path, lambda handle: handle.write(text.encode()))


def atomic_torch_save(obj, path) -> Path:
    return _atomic_write(path, lambda handle: torch.save(obj, handle))

"""A training run's directory: the checkpoint loader, the order of each epoch's writes, the writer's lock.

    DIR/checkpoint.pt   the whole state after the last complete epoch: model, optimizer, learning-rate
                        policy, epoch, RNG states, the metrics of every epoch so far, the arguments.
                        The record of the run: what its model has seen.
    DIR/metrics.jsonl   one JSON line per epoch, a readable copy of the checkpoint's metrics
    DIR/model.pt        with --save-model, the final weights (a plain state_dict)
    DIR/.lock           present while a train.py writes here (see RunLock)

:func:`load_checkpoint` is the one loader of checkpoints (train.py --resume and the report): any
file that is not a checkpoint of ours is refused with one line naming it and what is wrong, and
nothing in it is unpickled beyond what ``torch.load(weights_only=True)`` allows.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import reprlib
import socket
import warnings
import zipfile
from datetime import datetime
from pathlib import Path

import torch

from .backends import IMPLS
from .datasets import DATASETS
from .io import CHECKPOINT, FINAL_MODEL, METRICS, atomic_torch_save, atomic_write_text, leftovers
from .model import MODELS

try:  # POSIX
    import fcntl
except ImportError:  # Windows
    fcntl = None
    import msvcrt

LOCK = ".lock"

# What each key of train.py's checkpoint holds.
CHECKPOINT_KEYS = {
    "model": (dict, "the model's state_dict"),
    "optimizer": (dict, "the optimizer's state_dict"),
    "scheduler": (dict, "the learning-rate policy's state_dict"),
    "epoch": (int, "the number of epochs done"),
    "rng": (dict, "the random generators' states"),
    "metrics": (list, "one record per epoch"),
    "args": (dict, "train.py's arguments"),
}

_short = reprlib.Repr()
_short.maxlevel, _short.maxstring, _short.maxother = 2, 40, 40


class CheckpointError(ValueError):
    """A file that is not a usable checkpoint; the message names it and says what is wrong."""


class RunDirectoryInUse(RuntimeError):
    """Another process holds the run directory's lock."""


# ----------------------------------------------------------------------------- loading


def load_checkpoint(path, needs=("model", "args")) -> dict:
    """The checkpoint at ``path``, on the CPU, checked: a dict holding at least the keys ``needs``
    (of :data:`CHECKPOINT_KEYS`: the report needs the model and arguments, a resumed run all of them),
    each of the type it should be, whose arguments name a model, dataset and impl this version knows.

    Raises :class:`CheckpointError`, one line: a missing, empty, truncated or foreign file, one that
    names a global no checkpoint holds (refused before anything runs), a bare state_dict, a key missing.
    """
    path = Path(path)
    state = _unpickle(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not one of train.py's checkpoints: it holds a {type(state).__name__}, "
                              f"not a dict")
    missing = [key for key in needs if key not in state]
    if missing:
        if state and all(isinstance(value, torch.Tensor) for value in state.values()):
            raise CheckpointError(f"{path} holds a bare state_dict (like model.pt from --save-model), which does "
                                  f"not say which model and dataset it is for; use the checkpoint.pt of the run")
        found = ", ".join(_short.repr(key) for key in list(state)[:8]) or "none"
        raise CheckpointError(f"{path} is not one of train.py's checkpoints: it lacks "
                              f"{', '.join(map(repr, missing))} (its keys: {found})")
    for key, (kind, what) in CHECKPOINT_KEYS.items():
        if key in state and (not isinstance(state[key], kind) or isinstance(state[key], bool)):
            raise CheckpointError(f"{path}: its {key!r} should be {what} (a {kind.__name__}), "
                                  f"found a {type(state[key]).__name__}")
    if "metrics" in state and not all(isinstance(record, dict) for record in state["metrics"]):
        raise CheckpointError(f"{path}: its 'metrics' should be one dict per epoch")
    if "rng" in state and not isinstance(state["rng"].get("torch"), torch.Tensor):
        raise CheckpointError(f"{path}: its 'rng' lacks the state of torch's generator")
    _check_names(path, state["args"] if "args" in state else {})
    return state


def _unpickle(path: Path):
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    if size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes), not a checkpoint")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; its directory is at the end
        with open(path, "rb") as file:
            begins_as_zip = file.read(4) == b"PK\x03\x04"
        if begins_as_zip:
            raise CheckpointError(f"{path} is truncated: a zip archive without its end ({size} bytes); "
                                  f"an interrupted copy?")
        raise CheckpointError(f"{path} is not a checkpoint: its {size} bytes are not the zip archive torch.save "
                              f"writes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols: the error says what matters
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # its message advises weights_only=False: never shown
        unsafe = re.search(r"GLOBAL ([\w.]+)", str(error))
        if unsafe:
            raise CheckpointError(f"{path}: refused: it names {unsafe[1]}, which no checkpoint holds "
                                  f"(unpickling it could run code); nothing in it was run") from None
        raise CheckpointError(f"{path} is damaged: its pickled contents do not load") from None
    except Exception as error:  # the zip reader's errors: a damaged archive
        reason = (str(error).strip().splitlines() or [""])[0].split(". ")[0][:200]
        raise CheckpointError(f"{path} is damaged ({type(error).__name__}: {reason})") from None


def _check_names(path: Path, args: dict) -> None:
    model, dataset, impl = args.get("model", "simple"), args.get("dataset", "mnist"), args.get("impl", "torch")
    if model not in MODELS or dataset not in DATASETS or impl not in IMPLS:
        raise CheckpointError(f"{path} names model {_short.repr(model)}, dataset {_short.repr(dataset)}, impl "
                              f"{_short.repr(impl)}; expected one of {tuple(MODELS)}, {tuple(DATASETS)}, {IMPLS}")


# ----------------------------------------------------------------------------- writing


def save_epoch(directory, state: dict) -> None:
    """Write the state after an epoch: checkpoint.pt first, then metrics.jsonl from its metrics. A kill
    between the two leaves metrics.jsonl one epoch behind the model, never ahead of it; a resumed run
    writes it again from the checkpoint (:func:`write_metrics`) before anything else."""
    directory = Path(directory)
    atomic_torch_save(state, directory / CHECKPOINT)
    write_metrics(directory, state["metrics"])


def write_metrics(directory, metrics: list) -> None:
    atomic_write_text(Path(directory) / METRICS, "".join(json.dumps(record) + "\n" for record in metrics))


# ----------------------------------------------------------------------------- the lock


class RunLock:
    """The lock of the one process that writes a run directory: an flock on ``DIR/.lock``.

    The kernel drops an flock when its holder ends, however it ends (Ctrl-C, kill -9, a crash), so a
    lock is never stale: the file a killed holder leaves is taken over, with a note saying whose it
    was. The file holds its holder's pid, host and start time, for the message that refuses a second
    process. Released, the file is removed (and the directory too, if the lock created it and nothing
    else was written). Works on local file systems and NFS v4 (where Linux emulates flock with fcntl
    locks); on Windows, with msvcrt's byte lock.
    """

    ATTEMPTS = 5  # to lock the file at the path, not one its holder has just removed

    def __init__(self, directory) -> None:
        self.directory = Path(directory)
        self.path = self.directory / LOCK
        self._handle = None
        self._created = False

    def acquire(self) -> list[str]:
        """Take the lock, then remove what interrupted writes left behind. Returns notes on what it found
        (a killed holder's lock, removed files); raises :class:`RunDirectoryInUse`."""
        self._created = not self.directory.exists()
        for _ in range(self.ATTEMPTS):
            self.directory.mkdir(parents=True, exist_ok=True)
            try:
                handle = os.fdopen(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666), "r+")
            except FileNotFoundError:  # the directory went with a holder that left: make it again
                continue
            if not _try_lock(handle):
                holder = _read_holder(handle) or "another process"
                handle.close()
                raise RunDirectoryInUse(f"{self.directory} is in use by {holder}; wait for it to end, "
                                        f"or choose another --out")
            if _is_file_at(handle, self.path):
                break
            handle.close()  # locked the file of a holder that removed it as it left
        else:
            raise RunDirectoryInUse(f"{self.directory}: could not take the lock {self.path}")
        notes = []
        previous = _read_holder(handle)
        if previous:
            notes.append(f"{self.directory}: took over the lock of {previous}, which ended without releasing it")
        handle.seek(0)
        handle.truncate()
        handle.write(f"train.py (pid {os.getpid()} on {socket.gethostname()}, since "
                     f"{datetime.now():%Y-%m-%d %H:%M:%S})\n")
        handle.flush()
        self._handle = handle
        for name in (CHECKPOINT, METRICS, FINAL_MODEL):
            for leftover in leftovers(self.directory / name):
                size = leftover.stat().st_size
                leftover.unlink()
                notes.append(f"removed {leftover.name} ({size / 1e6:.1f} MB), left by an interrupted write")
        return notes

    def release(self) -> None:
        if self._handle is None:
            return
        try:
            self.path.unlink()  # while still held: whoever locks next finds the file at the path, or none
        except OSError:  # Windows does not remove an open file: leave it, emptied
            self._handle.seek(0)
            self._handle.truncate()
        self._handle.close()
        self._handle = None
        if self._created:
            try:
                self.directory.rmdir()  # only if nothing was written
            except OSError:
                pass


def _try_lock(handle) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
    except OSError:
        return False
    return True


def _read_holder(handle) -> str:
    try:
        handle.seek(0)
        return handle.read(500).strip()
    except OSError:  # Windows: the holder's byte lock keeps others from reading
        return ""


def _is_file_at(handle, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except FileNotFoundError:
        return False

"""How a child's records reach the checker: signed files in a results folder.

The child writes each record (a dict of tensors and plain data) as a file NAME.pt in the results
folder: 32 bytes of HMAC-SHA256 over the name and the payload, then the payload, ``torch.save``'s
bytes. The key is a secret of this run that the child reads from a pipe and drops before any
candidate code runs. The folder is beside the candidate's working directory, outside it; the
child knows it by its path, held by the writer, so a candidate that closes every file descriptor
(``os.closerange``) still has its records written. A submission can find the folder; what it
cannot do is sign what it puts there.

The checker reads the folder back (:func:`read`) trusting nothing in it: only regular files (no
symbolic links, FIFOs or devices; opened with O_NOFOLLOW | O_NONBLOCK, checked again once open),
each under RECORD_LIMIT bytes and all under TOTAL_LIMIT, named as the child names its records,
signed with this run's secret, loaded with ``torch.load(weights_only=True)`` and shaped as the
child makes them (:data:`SHAPES`). Anything else raises :class:`Unreadable`, and the run is
reported as crashed.

What the signature stops: a submission writing, copying or renaming record files through the
file system (forging a pass, a finished run, or a record the checker chokes on). What it does not
stop: code that reads the child's own memory (the secret, or the child's writer, are there to be
found by ``gc``, frames or ``/proc/self/mem``), or that patches torch inside the child so the child
records false values itself: the sandbox (see sandbox) keeps a submission from the machine, not from its
own process.
"""

from __future__ import annotations

import hmac
import io
import os
import re
import stat
from dataclasses import dataclass

import torch

SECRET_BYTES = 32
MAC_BYTES = 32
RECORD_LIMIT = 256 << 20     # bytes of one record file
TOTAL_LIMIT = 1 << 30        # bytes of all of a child's records
NAME = re.compile(r"(done|import|discovery|train|train-progress|call-\d{3,})")


class Unreadable(Exception):
    """The results folder holds something the child did not write, or not as it writes it."""


def _mac(secret: bytes, name: str, payload: bytes) -> bytes:
    return hmac.new(secret, name.encode() + b"\0" + payload, "sha256").digest()


class Writer:
    """The child's side: ``writer(name, record)`` writes one signed record into the results folder.

    Everything it uses is bound here, before candidate code runs: what a submission does to its own
    copy of torch, os or hmac cannot stop or change the records.
    """

    def __init__(self, folder: str, secret: bytes) -> None:
        self._folder, self._secret = os.path.abspath(folder), secret
        self._save, self._open, self._write, self._close = torch.save, os.open, os.write, os.close
        self._unlink, self._replace, self._join, self._mac = os.unlink, os.replace, os.path.join, _mac
        self._flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

    def __call__(self, name: str, record) -> None:
        buffer = io.BytesIO()
        self._save(record, buffer)
        data = self._mac(self._secret, name, buffer.getvalue()) + buffer.getvalue()
        temporary = self._join(self._folder, f".{name}.tmp")
        try:
            self._unlink(temporary)
        except FileNotFoundError:
            pass
        fd = self._open(temporary, self._flags, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[self._write(fd, view):]
        finally:
            self._close(fd)
        self._replace(temporary, self._join(self._folder, f"{name}.pt"))


# ----------------------------------------------------------------------------- the checker's side


def _regular_bytes(path: str, limit: int) -> bytes:
    """The bytes of ``path`` if it is a regular file of at most ``limit`` bytes (never blocking on a FIFO)."""
    name = os.path.basename(path)
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise Unreadable(f"{name} is not a regular file")
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as file:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise Unreadable(f"{name} is not a regular file")
        if status.st_size > limit:
            raise Unreadable(f"{name} holds {status.st_size} bytes, more than the {limit} its records may")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise Unreadable(f"{name} grew past the {limit} bytes its records may hold")
    return data


def read(folder, secret: bytes) -> dict:
    """name -> record for every record in ``folder`` (see the module doc); Unreadable if anything is amiss."""
    records, total = {}, 0
    for entry in sorted(os.listdir(folder)):
        if entry.startswith(".") and entry.endswith(".tmp"):
            continue   # a record the child was writing when it stopped: never opened
        name = entry.removesuffix(".pt")
        if not entry.endswith(".pt") or not NAME.fullmatch(name):
            raise Unreadable(f"{entry} is not a record the child writes")
        data = _regular_bytes(os.path.join(folder, entry), min(RECORD_LIMIT, TOTAL_LIMIT - total))
        total += len(data)
        payload = data[MAC_BYTES:]
        if not hmac.compare_digest(data[:MAC_BYTES], _mac(secret, name, payload)):
            raise Unreadable(f"{entry} was not written by the child (its signature does not match)")
        try:
            record = torch.load(io.BytesIO(payload), weights_only=True)
        except Exception as error:  # noqa: BLE001 - signed but unloadable: a bug, said as such
            raise Unreadable(f"{entry} cannot be loaded ({type(error).__name__}: {error})") from None
        problem = shape_problem(record, SHAPES[name.split("-")[0] if name.startswith("call-") else name])
        if problem:
            raise Unreadable(f"{entry} is not shaped as the child writes it: {problem}")
        records[name] = record
    return records


# ----------------------------------------------------------------------------- the shapes of records


@dataclass(frozen=True)
class _Of:
    shape: object


class Optional(_Of):
    """A key of a dict shape that may be absent; its value has ``shape`` when present."""


class ListOf(_Of):
    """A list whose every item has ``shape``."""


class DictOf(_Of):
    """A dict whose every value has ``shape`` (its keys are the child's names: any)."""


class Either(_Of):
    """Any one of the shapes of the tuple ``shape``."""


def shape_problem(value, shape, where: str = "the record") -> str | None:
    """What about ``value`` does not fit ``shape`` (a type, a tuple of types, {key: shape} with Optional
    values, ListOf, DictOf or Either), or None when it fits."""
    if isinstance(shape, Either):
        problems = [shape_problem(value, s, where) for s in shape.shape]
        return None if None in problems else problems[0]
    if isinstance(shape, (type, tuple)):
        return None if isinstance(value, shape) else f"{where} is of type {type(value).__name__}"
    if isinstance(shape, (ListOf, DictOf)):
        kind = list if isinstance(shape, ListOf) else dict
        if not isinstance(value, kind):
            return f"{where} is of type {type(value).__name__}, not {kind.__name__}"
        items = enumerate(value) if kind is list else value.items()
        return next((p for key, item in items if (p := shape_problem(item, shape.shape, f"{where}[{key!r}]"))), None)
    if not isinstance(value, dict):
        return f"{where} is of type {type(value).__name__}, not dict"
    for key, wanted in shape.items():
        optional = isinstance(wanted, Optional)
        if key not in value:
            if optional:
                continue
            return f"{where} has no {key!r}"
        problem = shape_problem(value[key], wanted.shape if optional else wanted, f"{where}[{key!r}]")
        if problem:
            return problem
    return None


NUMBER = (int, float)
TENSOR = Either((type(None), torch.Tensor))
ERROR = {"type": str, "message": str, "traceback": str, "phase": str}
OUTPUT_INFO = {"type": str, "dtype": Optional(str), "device": Optional(str), "shape": Optional(ListOf(int)),
               "requires_grad": Optional(bool), "is_leaf": Optional(bool),
               "grad_fn": Optional(Either((type(None), str))), "repr": Optional(str), "values": Optional(str)}
SHAPES = {
    "done": {},
    "import": {"error": ERROR},
    "discovery": DictOf({"callable": bool, "type": str, "text": str,
                         "parameters": Either((type(None), ListOf(ListOf((str, bool)))))}),
    "call": {"label": str, "seconds": ListOf(NUMBER), "native_seconds": ListOf(NUMBER),
             "error": Either((type(None), ERROR)), "output": Optional(TENSOR), "output_info": Optional(OUTPUT_INFO),
             "args_after": Optional(DictOf(TENSOR)), "grads": Optional(DictOf(TENSOR)),
             "backward": Optional(Either((type(None), {"ran": bool, "reason": Optional(str), "error": Optional(ERROR)}))),
             "ops": Optional(Either((type(None), {"functions": ListOf(str), "operators": ListOf(str)}))),
             "indices": Optional(TENSOR), "indices_info": Optional(OUTPUT_INFO)},   # max_pool2d's return_indices
    "train": {"losses": ListOf(NUMBER), "seconds": ListOf(NUMBER), "error": Optional(ERROR),
              "accuracy": Optional(NUMBER), "test_samples": Optional(int), "state": Optional(DictOf(torch.Tensor)),
              "other_batch": Optional(ERROR)},
}
SHAPES["train-progress"] = SHAPES["train"]

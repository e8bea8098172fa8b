"""CIFAR-10: find the official batch files, read them, normalise them.

No torchvision, no download. Get ``cifar-10-binary.tar.gz`` (preferred) or
``cifar-10-python.tar.gz`` from https://www.cs.toronto.edu/~kriz/cifar.html and
extract it into the directory you pass as ``--data-dir``; that gives one of::

    <data-dir>/cifar-10-batches-bin/  data_batch_1.bin .. data_batch_5.bin, test_batch.bin
    <data-dir>/cifar-10-batches-py/   data_batch_1 .. data_batch_5, test_batch (+ batches.meta)

Binary batch: records of 3073 bytes, 10000 per official file: 1 label byte
(0..9), then 3072 pixel bytes, the 1024 red, then 1024 green, then 1024 blue
values of the 32x32 image, each plane row-major, so byte ``1 + c*1024 + y*32 + x``
is channel ``c``, row ``y``, column ``x``. Python batch: a pickle (written by
Python 2) of a dict with keys ``b'batch_label'``, ``b'labels'`` (list of N ints),
``b'data'`` (uint8 numpy array ``[N, 3072]``, each row laid out as above) and
``b'filenames'``.

Pickle warning: unpickling can run arbitrary code. The python batches are read
by a restricted unpickler that resolves only the few globals those files name
(numpy's array and scalar reconstruction, ``ndarray``, ``dtype``; plus latin-1
``_codecs.encode`` and ``bytes()`` for protocol-2 pickles written by Python 3)
and refuses any other with :class:`CIFAR10FormatError` before it runs. Still, prefer the binary
batches, which are plain bytes; they are used when both versions are present.

:func:`find_cifar10` looks in the first of these sources that is given (a
mistyped ``--data-dir`` is an error, not a silent fallback): the explicit
``data_dir`` (``--data-dir``), else ``$SIMPLE_CONV_NET_DATA``, else ``./data``.
Each may be the directory holding ``cifar-10-batches-bin``/``-py`` or one of
those directories itself. :func:`load_cifar10` returns float32 images
``[N, 3, 32, 32]`` equal to ``(pixel / 255 - MEAN[c]) / STD[c]`` and int64 labels
``[N]``. :func:`write_binary_batch` and :func:`write_python_batch` write small
files in the official formats (test fixtures, or a tiny dataset of your own).
"""

from __future__ import annotations

import io
import os
import pickle
import reprlib
from pathlib import Path

import numpy as np
import torch

from .data import ENV_VAR, given_data_dir
from .io import atomic_write_bytes

# Per-channel mean and standard deviation of the 50000 training images' pixels
# scaled to [0, 1] (the commonly published figures; STD is the per-pixel std).
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)

NUM_CLASSES = 10
CHANNELS, IMAGE_SIZE = 3, 32
PIXELS = CHANNELS * IMAGE_SIZE * IMAGE_SIZE  # 3072
RECORD = 1 + PIXELS  # 3073 bytes per binary record

DIRS = {"bin": "cifar-10-batches-bin", "py": "cifar-10-batches-py"}
BATCHES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
SUFFIX = {"bin": ".bin", "py": ""}

_short = reprlib.Repr()  # a pickle's keys in a message: bounded, however they nest
_short.maxlevel, _short.maxstring, _short.maxother = 2, 40, 40


class CIFAR10NotFoundError(FileNotFoundError):
    """The CIFAR-10 batch files are not where they were looked for."""


class CIFAR10FormatError(ValueError):
    """A CIFAR-10 batch file is truncated, corrupt, unsafe or not the file it should be."""


def _files(kind: str) -> list[str]:
    return [name + SUFFIX[kind] for names in BATCHES.values() for name in names]


# ----------------------------------------------------------------------------- finding


def _candidates(data_dir: str | os.PathLike | None) -> tuple[list[tuple[Path, str]], str]:
    """``(directory, kind)`` pairs to try, binary first, and the source they came from."""
    base, source = given_data_dir(data_dir)
    if base is None:
        base, source = Path("data").resolve(), "default location ./data"
    pairs = [(base / DIRS[kind], kind) for kind in DIRS] + [(base, kind) for kind in DIRS]
    pairs.sort(key=lambda pair: pair[1] != "bin")  # stable: every binary candidate first
    return pairs, source


def find_cifar10(data_dir: str | os.PathLike | None = None) -> tuple[Path, str]:
    """``(directory, 'bin' or 'py')``: the directory holding all six batch files of one version.

    The binary version wins when both are complete. Raises
    :class:`CIFAR10NotFoundError` listing every place looked at, and what was
    missing in each, when none holds a complete set.
    """
    candidates, source = _candidates(data_dir)
    notes = []
    for directory, kind in candidates:
        missing = [name for name in _files(kind) if not (directory / name).is_file()]
        if not missing:
            return directory, kind
        if directory.is_dir():
            notes.append(f"  {directory}  ({kind} version, missing: {', '.join(missing)})")
        elif f"  {directory}  (no such directory)" not in notes:
            notes.append(f"  {directory}  (no such directory)")
    raise CIFAR10NotFoundError(
        f"CIFAR-10 files not found (searched the {source}). Expected {', '.join(_files('bin'))} "
        f"(binary version) or {', '.join(_files('py'))} (python version) in one of:\n"
        + "\n".join(notes)
        + "\nDownload cifar-10-binary.tar.gz (or cifar-10-python.tar.gz) from "
        "https://www.cs.toronto.edu/~kriz/cifar.html, extract it, and point --data-dir "
        f"(or ${ENV_VAR}) at the directory holding {DIRS['bin']} (or {DIRS['py']})."
    )


# ----------------------------------------------------------------------------- reading


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CIFAR10NotFoundError(f"CIFAR-10 file {path} does not exist") from None


def _check_labels(path: Path, labels: np.ndarray) -> None:
    bad = np.flatnonzero((labels < 0) | (labels >= NUM_CLASSES))
    if len(bad):
        raise CIFAR10FormatError(
            f"{path}: expected labels in 0..{NUM_CLASSES - 1}, found {int(labels[bad[0]])} (record {int(bad[0])})"
        )


def read_binary_batch(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a binary batch: ``(images uint8 [N, 3, 32, 32], labels int64 [N])``.

    The file must hold a whole, non-zero number of 3073-byte records (10000 in
    the official files, fewer is accepted). Raises :class:`CIFAR10FormatError`
    for a wrong size or a label outside 0..9, :class:`CIFAR10NotFoundError` if missing.
    """
    path = Path(path)
    data = _read_bytes(path)
    count, extra = divmod(len(data), RECORD)
    if count == 0 or extra:
        raise CIFAR10FormatError(
            f"{path}: expected a whole, non-zero number of {RECORD}-byte records (1 label byte + {PIXELS} "
            f"pixel bytes), found {len(data)} bytes ({count} records and {extra} bytes over); "
            "truncated, or not a CIFAR-10 binary batch"
        )
    records = np.frombuffer(data, dtype=np.uint8).reshape(count, RECORD)
    _check_labels(path, records[:, 0])
    images = torch.from_numpy(records[:, 1:].reshape(count, CHANNELS, IMAGE_SIZE, IMAGE_SIZE).copy())
    return images, torch.from_numpy(records[:, 0].astype(np.int64))


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode`` as Python 3's protocol-2 pickles use it for bytes, latin-1 only."""
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "iso8859-1", "iso-8859-1"):
        raise pickle.UnpicklingError(f"_codecs.encode allowed only for latin-1 text, got {encoding!r}")
    return text.encode("latin1")


def _empty_bytes() -> bytes:
    """``bytes()``, as Python 3's protocol-2 pickles write ``b''`` (an empty array's data); no arguments."""
    return b""


_RECONSTRUCT = np.zeros(0).__reduce__()[0]  # numpy.core / numpy._core .multiarray._reconstruct
_SCALAR = np.int64(0).__reduce__()[0]  # numpy.core / numpy._core .multiarray.scalar
# Every global a CIFAR-10 python batch (or one written by write_python_batch) names.
SAFE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,  # numpy 1.x pickles (the official files)
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,  # numpy 2.x pickles
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("_codecs", "encode"): _latin1_encode,  # bytes in protocol-2 pickles written by Python 3
    ("__builtin__", "bytes"): _empty_bytes,  # b'' in those pickles
}


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only :data:`SAFE_GLOBALS`; any other global is refused before it is imported or called."""

    def __init__(self, file, path: Path) -> None:
        super().__init__(file, encoding="bytes")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) in SAFE_GLOBALS:
            return SAFE_GLOBALS[module, name]
        raise CIFAR10FormatError(
            f"{self.path}: refused to unpickle the global {module}.{name}: a CIFAR-10 python batch names only "
            + ", ".join(sorted({f"{m}.{n}" for m, n in SAFE_GLOBALS}))
            + ". This file is not one, and unpickling it could run code; use the binary batches instead"
        )


def _unpickle(path: Path) -> object:
    data = _read_bytes(path)
    try:
        return _RestrictedUnpickler(io.BytesIO(data), path).load()
    except CIFAR10FormatError:
        raise
    except Exception as error:  # truncated or corrupt: EOFError, UnpicklingError, ValueError, ...
        raise CIFAR10FormatError(
            f"{path}: expected a pickled CIFAR-10 python batch, found a truncated or corrupt pickle "
            f"({type(error).__name__}: {error})"
        ) from None


def _labels(path: Path, labels, count: int) -> np.ndarray:
    """``b'labels'`` as int64 ``[count]``, accepted only in the forms real batches have: a flat list of
    ints (the official files) or a 1-D integer array. Checked before anything is converted: numpy turns a
    list of lists into an array of every nested level, and a few hundred bytes of pickle can nest shared
    references into billions of elements."""
    expected = f"expected b'labels' to be {count} ints (one per row of b'data')"
    if isinstance(labels, np.ndarray):
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != count:
            raise CIFAR10FormatError(f"{path}: {expected}, found a {labels.dtype} array of shape {labels.shape}")
        return labels.astype(np.int64)
    if not isinstance(labels, list):
        raise CIFAR10FormatError(f"{path}: {expected}, found a {type(labels).__name__}")
    if len(labels) != count:
        raise CIFAR10FormatError(f"{path}: {expected}, found a list of {len(labels)}")
    odd = next((k for k, label in enumerate(labels) if type(label) is not int), None)
    if odd is not None:
        raise CIFAR10FormatError(f"{path}: {expected}, found a list whose item {odd} is a {type(labels[odd]).__name__}")
    if labels and not -2**63 <= min(labels) <= max(labels) < 2**63:
        raise CIFAR10FormatError(f"{path}: expected labels in 0..{NUM_CLASSES - 1}, found {min(labels)}..{max(labels)}")
    return np.array(labels, dtype=np.int64)


def read_python_batch(path: str | os.PathLike) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a python (pickled) batch: ``(images uint8 [N, 3, 32, 32], labels int64 [N])``.

    Unpickled with ``encoding='bytes'`` by a restricted unpickler (see the
    module docstring). Raises :class:`CIFAR10FormatError` for a refused global,
    a truncated pickle, a missing key, ``b'data'`` not uint8 ``[N, 3072]``,
    a label count other than N or a label outside 0..9.
    """
    path = Path(path)
    batch = _unpickle(path)
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        found = (f"a dict with keys {', '.join(_short.repr(key) for key in list(batch)[:8])}"
                 if isinstance(batch, dict) else type(batch).__name__)
        raise CIFAR10FormatError(f"{path}: expected a dict with keys b'data' and b'labels', found {found}")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS \
            or len(data) == 0:
        found = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise CIFAR10FormatError(
            f"{path}: expected b'data' to be a uint8 array of shape [N, {PIXELS}] with N >= 1, found {found}"
        )
    labels = _labels(path, batch[b"labels"], len(data))
    _check_labels(path, labels)
    images = torch.from_numpy(np.ascontiguousarray(data).reshape(-1, CHANNELS, IMAGE_SIZE, IMAGE_SIZE).copy())
    return images, torch.from_numpy(labels)


# ----------------------------------------------------------------------------- loading


def load_cifar10(split: str, data_dir: str | os.PathLike | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Load ``'train'`` (data_batch_1..5 concatenated, 50000 samples) or ``'test'`` (test_batch, 10000).

    Returns ``(images, labels)``: images float32 ``[N, 3, 32, 32]`` equal to
    ``(pixel / 255 - MEAN[c]) / STD[c]``, labels int64 ``[N]`` in 0..9.
    ``data_dir`` is searched as in :func:`find_cifar10`. Nothing is cached.
    """
    if split not in BATCHES:
        raise ValueError(f"load_cifar10(): argument 'split' expected 'train' or 'test', got {split!r}")
    directory, kind = find_cifar10(data_dir)
    read = read_binary_batch if kind == "bin" else read_python_batch
    parts = [read(directory / (name + SUFFIX[kind])) for name in BATCHES[split]]
    images = torch.cat([part[0] for part in parts])
    labels = torch.cat([part[1] for part in parts])
    mean = torch.tensor(MEAN).view(1, CHANNELS, 1, 1)
    std = torch.tensor(STD).view(1, CHANNELS, 1, 1)
    return images.to(torch.float32).div_(255).sub_(mean).div_(std), labels


def load(split: str, data_dir: str | os.PathLike | None = None,
         check_md5: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset interface of :mod:`simple_conv_net.datasets`: :func:`load_cifar10`. ``check_md5`` has
    nothing to check here: CIFAR-10 publishes the MD5 of its archives only, not of the batch files
    extracted from them (whose format the readers check)."""
    return load_cifar10(split, data_dir)


# ----------------------------------------------------------------------------- writing (fixtures)


def _records(function: str, images, labels) -> tuple[np.ndarray, np.ndarray]:
    """``images`` (uint8 ``[N, 3, 32, 32]``) as ``[N, 3072]`` rows and ``labels`` (N ints in 0..9) as uint8."""
    images, labels = torch.as_tensor(images), torch.as_tensor(labels)
    if images.dtype != torch.uint8 or images.dim() != 4 or tuple(images.shape[1:]) != (3, 32, 32):
        raise ValueError(
            f"{function}(): argument 'images' expected uint8 [N, 3, 32, 32], got {images.dtype} {list(images.shape)}"
        )
    if labels.shape != (len(images),) or labels.is_floating_point() or (
        len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < NUM_CLASSES
    ):
        raise ValueError(f"{function}(): argument 'labels' expected {len(images)} ints in 0..9, got {labels}")
    return images.reshape(len(images), PIXELS).numpy(), labels.to(torch.uint8).numpy()


def write_binary_batch(path: str | os.PathLike, images_uint8, labels) -> Path:
    """Write a binary batch (fixture helper): one 3073-byte record per image.

    ``images_uint8``: uint8 ``[N, 3, 32, 32]`` (tensor or array); ``labels``: N ints in 0..9.
    """
    rows, labels = _records("write_binary_batch", images_uint8, labels)
    path = Path(path)
    atomic_write_bytes(path, np.concatenate([labels[:, None], rows], axis=1).tobytes())
    return path


def write_python_batch(path: str | os.PathLike, images_uint8, labels) -> Path:
    """Write a python batch (fixture helper): the official dict, pickled with protocol 2.

    ``images_uint8``: uint8 ``[N, 3, 32, 32]`` (tensor or array); ``labels``: N ints in 0..9.
    """
    rows, labels = _records("write_python_batch", images_uint8, labels)
    path = Path(path)
    batch = {
        b"batch_label": f"{path.name} written by simple_conv_net".encode(),
        b"labels": [int(label) for label in labels],
        b"data": rows.copy(),
        b"filenames": [f"image_{i:05d}.png".encode() for i in range(len(rows))],
    }
    atomic_write_bytes(path, pickle.dumps(batch, protocol=2))
    return path

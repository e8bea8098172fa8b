"""MNIST: find the four standard files, read them, normalise them, batch them.

No torchvision. The files are the four IDX files of LeCun's distribution, each
either gzipped (``.gz``) or uncompressed::

    train-images-idx3-ubyte   60000 x 28 x 28 uint8     magic 2051
    train-labels-idx1-ubyte   60000 uint8 in 0..9        magic 2049
    t10k-images-idx3-ubyte    10000 x 28 x 28 uint8     magic 2051
    t10k-labels-idx1-ubyte    10000 uint8 in 0..9        magic 2049

:func:`find_mnist` looks for them, in this order (the first source that is given
is the only one searched, so a mistyped ``--data-dir`` is an error rather than
a silent fallback):

1. the explicit ``data_dir`` argument (``--data-dir``), or ``<data_dir>/MNIST/raw``;
2. else the environment variable ``SIMPLE_CONV_NET_DATA`` (same two forms);
3. else ``./data``, ``./data/MNIST/raw`` (torchvision's layout, so its downloads
   are reused), ``../shared/mnist`` relative to the current directory, and
   ``../shared/mnist`` relative to the repository root.

:func:`read_idx` reads a file in bounded pieces, checking the header before the data:
a gzip stream is inflated only as far as the header's shape promises (a small file
that inflates to gigabytes is refused at that point), and nothing is allocated for a
shape the file cannot hold. :func:`load_mnist` returns float32 images ``[N, 1, 28, 28]``
normalised as ``(pixel / 255 - MEAN) / STD`` and int64 labels ``[N]``, N >= 1. A file
with one of the four standard names is checked against the real MNIST file's MD5
(:data:`CONTENT_MD5S`, of the uncompressed content, so a ``.gz``, a recompressed copy
and an uncompressed file are all checked); ``check_md5=False`` (train.py
``--no-md5-check``) loads data of your own under those names. :class:`Batches` cuts
them into batches by slicing whole tensors (no per-sample Python), shuffled by
a permutation that is a pure function of ``(seed, epoch)``, so a resumed run
sees exactly the batches of an uninterrupted one. :func:`download_mnist` fetches
the ``.gz`` files with urllib and checks their MD5s before they get their names.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import urllib.request
import zlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

import torch

from .io import atomic_file

MEAN, STD = 0.1307, 0.3081

ENV_VAR = "SIMPLE_CONV_NET_DATA"
REPO_ROOT = Path(__file__).resolve().parents[1]
REPO_SHARED_DIR = REPO_ROOT / ".." / "shared" / "mnist"

SPLITS = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
FILES = tuple(name for pair in SPLITS.values() for name in pair)
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
MD5_ADVICE = "for data of your own, pass --no-md5-check to train.py (check_md5=False to load_mnist)"

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
MAGIC_MEANING = {IMAGES_MAGIC: "images", LABELS_MAGIC: "labels"}
UBYTE = 0x08
IMAGE_SIZE = 28
NUM_CLASSES = 10

MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# MD5 of each .gz file as the mirrors serve it (torchvision's table).
MD5S = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
# MD5 of each file's content: the uncompressed IDX bytes of the .gz files above (checked
# against MD5S). A .gz whose bytes differ (recompressed, e.g. with another gzip header)
# but whose content matches is the same data, and so is an uncompressed copy.
CONTENT_MD5S = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}

CHUNK = 1 << 20  # bytes per read
# Deflate's largest expansion: a gzip file of n bytes holds at most about 1032 n bytes.
MAX_INFLATION = 1032


class MNISTNotFoundError(FileNotFoundError):
    """The MNIST files are not where they were looked for."""


class MNISTFormatError(ValueError):
    """An MNIST file is truncated, corrupt or not the IDX file it should be."""


class MNISTChecksumError(MNISTFormatError):
    """A file with a standard MNIST name whose content is not the real file's."""


class MNISTDownloadError(OSError):
    """No mirror gave a file whose checksum matched."""


# ----------------------------------------------------------------------------- finding


def _file_in(directory: Path, name: str) -> Path | None:
    """``directory/name`` (uncompressed, preferred) or ``directory/name.gz``, if either exists."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def given_data_dir(data_dir: str | os.PathLike | None) -> tuple[Path | None, str]:
    """The directory the user named, and how: ``--data-dir`` first, else ``$SIMPLE_CONV_NET_DATA``;
    (None, "default locations") when neither is given. A named directory is the only one searched,
    so a mistyped one is an error rather than a silent fallback (every dataset follows this rule)."""
    if data_dir is not None:
        return Path(data_dir).expanduser().resolve(), "data_dir / --data-dir"
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser().resolve(), f"${ENV_VAR}"
    return None, "default locations"


def _candidates(data_dir: str | os.PathLike | None) -> tuple[list[Path], str]:
    """The directories to search, and the source they came from."""
    base, source = given_data_dir(data_dir)
    if base is None:
        cwd_data = Path("data")
        defaults = [cwd_data, cwd_data / "MNIST" / "raw", Path("..") / "shared" / "mnist", REPO_SHARED_DIR]
        return list(dict.fromkeys(path.resolve() for path in defaults)), source
    return [base, base / "MNIST" / "raw"], source


def find_mnist(data_dir: str | os.PathLike | None = None) -> Path:
    """The directory holding all four MNIST files (each ``.gz`` or uncompressed).

    Raises :class:`MNISTNotFoundError` listing every place looked at, and what
    was missing in each, when no directory holds all four.
    """
    candidates, source = _candidates(data_dir)
    notes = []
    for directory in candidates:
        missing = [name for name in FILES if _file_in(directory, name) is None]
        if not missing:
            return directory
        if not directory.is_dir():
            notes.append(f"  {directory}  (no such directory)")
        else:
            notes.append(f"  {directory}  (missing: {', '.join(missing)})")
    raise MNISTNotFoundError(
        f"MNIST files not found (searched the {source}). Expected "
        + ", ".join(f"{name}[.gz]" for name in FILES)
        + " in one of:\n"
        + "\n".join(notes)
        + f"\nPoint --data-dir (or ${ENV_VAR}) at the directory holding them, "
        "or use --download to fetch them."
    )


def mnist_files(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """The four MNIST files, found as in :func:`find_mnist` (each ``.gz`` or uncompressed), in :data:`FILES`'
    order."""
    directory = find_mnist(data_dir)
    return [_file_in(directory, name) for name in FILES]


# ----------------------------------------------------------------------------- reading


class _Content:
    """A file's content, read in bounded pieces: inflated on the fly for ``.gz``, and with ``md5`` hashed
    as it goes.

    ``capacity``: the most bytes the content can have (the size of a plain file; for a gzip file,
    what deflate can expand its bytes to at most), so that a header promising more is refused before
    anything is read.
    """

    def __init__(self, path: Path, md5: bool = False) -> None:
        self.path = path
        try:
            self.size = path.stat().st_size
        except FileNotFoundError:
            raise MNISTNotFoundError(f"MNIST file {path} does not exist") from None
        self.compressed = path.suffix == ".gz"
        self.capacity = MAX_INFLATION * self.size if self.compressed else self.size
        self.md5 = hashlib.md5() if md5 else None
        self._stream: BinaryIO = gzip.open(path, "rb") if self.compressed else open(path, "rb")

    def read(self, count: int) -> bytearray:
        """The next ``count`` bytes, fewer only at the end of the content."""
        content = bytearray()
        while len(content) < count:
            try:
                chunk = self._stream.read(min(count - len(content), CHUNK))
            except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
                if not self.compressed:
                    raise
                raise MNISTFormatError(f"{self.path}: expected a gzip-compressed IDX file, found a corrupt or "
                                       f"truncated gzip stream ({error})") from None
            if not chunk:
                break
            if self.md5 is not None:
                self.md5.update(chunk)
            content += chunk
        return content

    def close(self) -> None:
        self._stream.close()


def _read_idx(path: Path, magic: int | None = None, md5: bool = False,
              shape: tuple | None = None, why: str = "") -> tuple[torch.Tensor, str | None]:
    """(the data of an unsigned-byte IDX file, with ``md5`` the MD5 of its content); see :func:`read_idx`.
    ``shape``: the header's dimensions, None for any size, checked before any data is read (``why``
    explains them in the error)."""
    content = _Content(path, md5)
    try:
        return _parse_idx(content, magic, shape, why), content.md5.hexdigest() if md5 else None
    finally:
        content.close()


def _parse_idx(content: _Content, magic: int | None, expected_shape: tuple | None = None, why: str = "") -> torch.Tensor:
    path = content.path
    head = content.read(4)
    if len(head) < 4:
        raise MNISTFormatError(f"{path}: expected at least a 4-byte IDX header, found {len(head)} bytes")
    found = int.from_bytes(head, "big")
    zero, dtype, ndim = head[0] << 8 | head[1], head[2], head[3]
    if magic is not None and found != magic:
        meaning = MAGIC_MEANING.get(found, f"0x{found:08X}")
        raise MNISTFormatError(f"{path}: wrong magic number, expected {magic} ({MAGIC_MEANING[magic]}), "
                               f"got {found} ({meaning})")
    if zero != 0 or dtype != UBYTE or ndim == 0:
        raise MNISTFormatError(
            f"{path}: expected an unsigned-byte IDX magic number 0x0000080D with D >= 1 dimensions "
            f"({IMAGES_MAGIC} for images, {LABELS_MAGIC} for labels), found {found} (0x{found:08X})"
        )
    header = 4 + 4 * ndim
    dims = content.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise MNISTFormatError(
            f"{path}: truncated header: expected {header} bytes for {ndim} dimensions, found {4 + len(dims)}"
        )
    shape = [int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim)]
    if expected_shape is not None and not _fits(shape, expected_shape):
        wanted = " x ".join("N" if size is None else str(size) for size in expected_shape)
        raise MNISTFormatError(f"{path}: expected {wanted}{why}, found {' x '.join(map(str, shape))} "
                               f"(in its header: nothing more was read)")
    expected = header + math.prod(shape)
    needs = f"the header's shape {tuple(shape)} needs {expected} bytes"
    if not content.compressed and content.size != expected:
        problem = "truncated" if content.size < expected else "has trailing bytes"
        raise MNISTFormatError(f"{path}: {problem}: {needs}, found {content.size}")
    if expected > content.capacity:
        raise MNISTFormatError(f"{path}: truncated: {needs}, more than its {content.size} compressed bytes can hold")
    data = content.read(expected - header)
    if len(data) < expected - header:
        raise MNISTFormatError(f"{path}: truncated: {needs}, found {header + len(data)}")
    if content.read(1):  # also makes the gzip reader check the stream's CRC and length
        raise MNISTFormatError(f"{path}: has trailing bytes: {needs}, found more (read no further)")
    if not data:  # no samples; torch.frombuffer rejects an empty buffer
        return torch.empty(shape, dtype=torch.uint8)
    return torch.frombuffer(data, dtype=torch.uint8).reshape(shape)


def _fits(shape, expected_shape) -> bool:
    """Whether ``shape`` is ``expected_shape``, whose None entries stand for any size."""
    return len(shape) == len(expected_shape) and all(e is None or s == e for s, e in zip(shape, expected_shape))


def read_idx(path: str | os.PathLike, magic: int | None = None) -> torch.Tensor:
    """Read an unsigned-byte IDX file (``.gz`` or uncompressed).

    Returns a uint8 tensor whose shape is the header's dimensions, e.g.
    ``[N, 28, 28]`` for an images file (magic 2051), ``[N]`` for labels (2049).
    ``magic``: the magic number the file must have. Raises :class:`MNISTFormatError`
    for a bad magic number or a byte length that disagrees with the header (found
    before reading or inflating more than the header promises),
    :class:`MNISTNotFoundError` if it is missing.
    """
    return _read_idx(Path(path), magic)[0]


def _plain_name(path: Path) -> str:
    return path.name[: -len(".gz")] if path.suffix == ".gz" else path.name


def load_mnist(split: str, data_dir: str | os.PathLike | None = None,
               check_md5: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split, ``'train'`` (60000 samples) or ``'test'`` (10000).

    Returns ``(images, labels)``: images float32 ``[N, 1, 28, 28]`` equal to
    ``(pixel / 255 - MEAN) / STD``, labels int64 ``[N]`` in 0..9, N >= 1. ``data_dir``
    is searched as in :func:`find_mnist`. The files are checked against the real
    MNIST files' MD5 (:data:`CONTENT_MD5S`) unless ``check_md5`` is False (data of
    your own under the standard names). Nothing is cached on disk.
    """
    if split not in SPLITS:
        raise ValueError(f"load_mnist(): argument 'split' expected 'train' or 'test', got {split!r}")
    directory = find_mnist(data_dir)
    images_path, labels_path = (_file_in(directory, name) for name in SPLITS[split])
    real = {path: CONTENT_MD5S.get(_plain_name(path)) if check_md5 else None for path in (images_path, labels_path)}
    # The header's shape is checked before any data is read: N x 28 x 28 images and N labels, with N the
    # real split's size where the file is to be the real one (its MD5 is checked).
    count = {path: SPLIT_SIZES[split] if real[path] else None for path in real}
    why = {path: f" (the real MNIST {split} split, as its MD5 is checked: {MD5_ADVICE})" if real[path] else ""
           for path in real}
    images, images_md5 = _read_idx(images_path, IMAGES_MAGIC, md5=real[images_path] is not None,
                                   shape=(count[images_path], IMAGE_SIZE, IMAGE_SIZE), why=why[images_path])
    labels, labels_md5 = _read_idx(labels_path, LABELS_MAGIC, md5=real[labels_path] is not None,
                                   shape=(count[labels_path],), why=why[labels_path])

    if len(images) != len(labels):
        raise MNISTFormatError(
            f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels; "
            "expected the same count"
        )
    if len(images) == 0:
        raise MNISTFormatError(f"{images_path}: holds no images (N = 0); a split needs at least one")
    if int(labels.max()) >= NUM_CLASSES:
        raise MNISTFormatError(
            f"{labels_path}: expected labels in 0..{NUM_CLASSES - 1}, found {int(labels.max())}"
        )
    for path, md5 in ((images_path, images_md5), (labels_path, labels_md5)):
        if md5 != real[path]:
            raise MNISTChecksumError(
                f"{path}: MD5 {md5} of its content differs from the real MNIST file's ({real[path]}): the file is "
                f"damaged, or it is data of your own under MNIST's name; {MD5_ADVICE}"
            )
    normalised = images.to(torch.float32).div_(255).sub_(MEAN).div_(STD).unsqueeze(1)
    return normalised, labels.to(torch.int64)


# ----------------------------------------------------------------------------- batching


def _epoch_seed(seed: int, epoch: int) -> int:
    """A 63-bit generator seed that depends only on ``(seed, epoch)``."""
    digest = hashlib.blake2b(f"simple_conv_net.Batches:{seed}:{epoch}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1


def _require_int(argument: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"Batches(): argument '{argument}' expected an int >= {minimum}, got {value!r}")
    return value


class Batches:
    """Batches of ``(images, labels)`` cut from two whole tensors.

    ``images``: ``[N, ...]`` (e.g. ``[N, 1, 28, 28]``), ``labels``: ``[N]``.
    ``limit`` keeps the first ``limit`` samples. Each epoch yields
    ``len(self)`` batches of ``batch_size`` samples (the last one may be
    smaller). With ``shuffle`` the order of epoch ``e`` is a permutation drawn
    from a private generator seeded by ``(seed, e)`` only: the same for every
    call, independent of the global RNG, and different from epoch to epoch.
    Iterating the object itself yields epoch 0; call :meth:`epoch` each epoch.
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        limit: int | None = None,
    ) -> None:
        if len(images) != len(labels):
            raise ValueError(
                f"Batches(): arguments 'images' and 'labels' expected the same length, "
                f"got {len(images)} images and {len(labels)} labels"
            )
        if len(images) == 0:
            raise ValueError("Batches(): arguments 'images' and 'labels' expected at least one sample, got none")
        self.batch_size = _require_int("batch_size", batch_size, 1)
        self.seed = _require_int("seed", seed, 0)
        if limit is not None:
            _require_int("limit", limit, 1)
            if limit > len(images):
                raise ValueError(
                    f"Batches(): argument 'limit' expected at most {len(images)} (the number of samples), got {limit}"
                )
            images, labels = images[:limit], labels[:limit]
        self.images, self.labels = images, labels
        self.shuffle = shuffle

    @property
    def num_samples(self) -> int:
        """Samples per epoch (after ``limit``)."""
        return len(self.labels)

    def __len__(self) -> int:
        """Batches per epoch, the last partial batch included."""
        return -(-self.num_samples // self.batch_size)

    def epoch(self, epoch: int, rank: int = 0, world_size: int = 1) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The batches of epoch ``epoch``: ``(images [B, ...], labels [B])`` pairs.

        With ``world_size`` > 1 (distributed training) this is rank ``rank``'s shard: every
        ``world_size``-th sample of the epoch's order, starting at ``rank``. The shards are
        disjoint, of equal length (the last ``num_samples % world_size`` samples of the order
        are left out of that epoch), so every rank takes the same number of steps, and step k
        of all ranks together covers the samples a single process with batch size
        ``world_size * batch_size`` sees at its step k.
        """
        _require_int("epoch", epoch, 0)
        _require_int("world_size", world_size, 1)
        if not 0 <= rank < world_size:
            raise ValueError(f"Batches.epoch(): argument 'rank' expected 0 <= rank < {world_size}, got {rank!r}")
        n, size = self.num_samples, self.batch_size
        if self.shuffle:
            generator = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch))
            order = torch.randperm(n, generator=generator)
        elif world_size == 1:
            for start in range(0, n, size):
                yield self.images[start : start + size], self.labels[start : start + size]
            return
        else:
            order = torch.arange(n)
        shard = order[: n - n % world_size].view(-1, world_size)[:, rank] if world_size > 1 else order
        shard = shard.to(self.images.device)
        for start in range(0, len(shard), size):
            index = shard[start : start + size]
            yield self.images[index], self.labels[index]

    def batches_per_rank(self, world_size: int = 1) -> int:
        """Batches each rank takes per epoch when the epoch is sharded over ``world_size`` ranks."""
        return -(-(self.num_samples // world_size) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self.epoch(0)


# ----------------------------------------------------------------------------- downloading


def _md5_matches(path: Path, name: str, md5: str) -> bool:
    """Whether ``path`` is the expected file: its MD5 matches, or (for a
    recompressed copy of a known MNIST file) its decompressed content's does."""
    if hashlib.md5(path.read_bytes()).hexdigest() == md5:
        return True
    real = CONTENT_MD5S.get(_plain_name(Path(name)))
    if real is None:
        return False
    content = _Content(path, md5=True)
    try:
        while content.read(CHUNK):
            pass
    except MNISTFormatError:  # not a gzip stream
        return False
    finally:
        content.close()
    return content.md5.hexdigest() == real


def _fetch(url: str, target: Path, name: str, md5: str, timeout: float) -> None:
    """Download ``url`` into a temporary file beside ``target``; rename it to
    ``target`` only if its checksum matches. Raises on any failure, leaving nothing."""
    with atomic_file(target) as (out, temporary), urllib.request.urlopen(url, timeout=timeout) as response:
        while chunk := response.read(1 << 20):
            out.write(chunk)
        out.flush()
        if not _md5_matches(temporary, name, md5):
            found = hashlib.md5(temporary.read_bytes()).hexdigest()
            raise ValueError(f"checksum mismatch: expected MD5 {md5}, found {found}")


def download_mnist(
    root: str | os.PathLike,
    mirrors: Sequence[str] = MIRRORS,
    md5s: Mapping[str, str] = MD5S,
    timeout: float = 30.0,
) -> Path:
    """Download the files named in ``md5s`` (file name -> MD5) into ``root``.

    Each file is tried from each mirror in turn (``mirror + name``), written to
    a temporary name in ``root`` and renamed only once its MD5 matches. Files
    already present with the right checksum are kept. ``timeout`` (seconds)
    bounds each network operation. Returns ``root`` as a Path; raises
    :class:`MNISTDownloadError` naming the file, the URLs tried and why each
    failed when no mirror works.
    """
    if isinstance(mirrors, str):
        raise TypeError(f"download_mnist(): argument 'mirrors' expected a sequence of URLs, got the string {mirrors!r}")
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    for name, md5 in md5s.items():
        target = root / name
        if target.is_file() and _md5_matches(target, name, md5):
            continue
        failures = []
        for mirror in mirrors:
            url = mirror.rstrip("/") + "/" + name
            try:
                _fetch(url, target, name, md5, timeout)
                break
            except (OSError, http.client.HTTPException, ValueError) as error:  # network, HTTP, checksum
                failures.append(f"  {url}: {error}")
        else:
            raise MNISTDownloadError(
                f"could not download {name} into {root}; tried:\n" + "\n".join(failures or ["  (no mirrors given)"])
            )
    return root


def load(split: str, data_dir: str | os.PathLike | None = None,
         check_md5: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The dataset interface of :mod:`simple_conv_net.datasets`: :func:`load_mnist`."""
    return load_mnist(split, data_dir, check_md5)

"""The CIFAR-10 data module: finding, reading both official formats, normalising, refusing unsafe pickles.

The real CIFAR-10 is not needed: every test builds small batch files (7 records
per training batch, 5 in the test batch) in tmp_path.
"""

from __future__ import annotations

import os
import pickle
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import peak_allocation

from simple_conv_net import cifar10, datasets
from simple_conv_net.cifar10 import (
    MEAN,
    STD,
    CIFAR10FormatError,
    CIFAR10NotFoundError,
    find_cifar10,
    load_cifar10,
    read_binary_batch,
    read_python_batch,
    write_binary_batch,
    write_python_batch,
)

TRAIN, TEST = 7, 5  # records per training batch, in the test batch
NAMES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


# ----------------------------------------------------------------------------- helpers


def fake_batches(seed: int = 0) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Random uint8 images [n, 3, 32, 32] and labels [n] for each of the six batches, by name."""
    generator = torch.Generator().manual_seed(seed)
    batches = {}
    for name in NAMES:
        n = TEST if name == "test_batch" else TRAIN
        images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)
        batches[name] = images, torch.randint(0, 10, (n,), generator=generator)
    return batches


def make_dataset(root: Path, kind: str, seed: int = 0) -> Path:
    """``root/cifar-10-batches-{kind}`` holding the six batches of :func:`fake_batches`."""
    directory = root / cifar10.DIRS[kind]
    directory.mkdir(parents=True, exist_ok=True)
    write = write_binary_batch if kind == "bin" else write_python_batch
    for name, (images, labels) in fake_batches(seed).items():
        write(directory / (name + cifar10.SUFFIX[kind]), images, labels)
    return directory


def python2_pickle(rows: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled the way Python 2 + numpy 1.x wrote the official files: str
    opcodes (no _codecs.encode) and the global numpy.core.multiarray._reconstruct."""
    def string(b):  # BINSTRING: a Python 2 str
        return b"T" + len(b).to_bytes(4, "little") + b

    def glob(module, name):  # GLOBAL
        return b"c" + module + b"\n" + name + b"\n"

    def small(n):  # BININT2
        return b"M" + n.to_bytes(2, "little")

    dtype = (glob(b"numpy", b"dtype") + string(b"u1") + small(0) + small(1) + b"\x87R"
             + b"(" + small(3) + string(b"|") + b"NNN" + b"J\xff\xff\xff\xff" * 2 + small(0) + b"tb")
    array = (glob(b"numpy.core.multiarray", b"_reconstruct") + glob(b"numpy", b"ndarray")
             + small(0) + b"\x85" + string(b"b") + b"\x87R"
             + b"(" + small(1) + small(rows.shape[0]) + small(rows.shape[1]) + b"\x86" + dtype + b"\x89"
             + string(rows.tobytes()) + b"tb")
    label_list = b"](" + b"".join(small(label) for label in labels) + b"e"
    return (b"\x80\x02}(" + string(b"batch_label") + string(b"training batch 1 of 5")
            + string(b"labels") + label_list + string(b"data") + array
            + string(b"filenames") + b"](" + b"".join(string(b"x.png") for _ in labels) + b"eu.")


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Run in an empty directory with no env var."""
    monkeypatch.delenv(cifar10.ENV_VAR, raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


# ----------------------------------------------------------------------------- reading


def test_binary_pixel_layout(tmp_path):
    # Byte 1 + c*1024 + y*32 + x of a record is channel c, row y, column x.
    records = np.zeros((2, 3073), dtype=np.uint8)
    records[:, 0] = [3, 9]
    records[1, 1 + 2 * 1024 + 5 * 32 + 7] = 200  # blue, row 5, column 7 of image 1
    records[0, 1 + 0 * 1024 + 31 * 32 + 0] = 17  # red, row 31, column 0 of image 0
    (tmp_path / "b.bin").write_bytes(records.tobytes())
    images, labels = read_binary_batch(tmp_path / "b.bin")
    assert images.shape == (2, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.tolist() == [3, 9] and labels.dtype == torch.int64
    assert images[1, 2, 5, 7] == 200 and images[0, 0, 31, 0] == 17
    assert int(images.sum()) == 217


def test_python_pixel_layout(tmp_path):
    rows = np.zeros((2, 3072), dtype=np.uint8)
    rows[1, 1 * 1024 + 4 * 32 + 30] = 99  # green, row 4, column 30 of image 1
    with open(tmp_path / "batch", "wb") as f:
        pickle.dump({b"data": rows, b"labels": [0, 8]}, f, protocol=2)
    images, labels = read_python_batch(tmp_path / "batch")
    assert images.shape == (2, 3, 32, 32) and images.dtype == torch.uint8
    assert labels.tolist() == [0, 8] and labels.dtype == torch.int64
    assert images[1, 1, 4, 30] == 99 and int(images.sum()) == 99


@pytest.mark.parametrize("kind", ["bin", "py"])
def test_writers_round_trip(tmp_path, kind):
    images, labels = fake_batches()["test_batch"]
    write, read = (write_binary_batch, read_binary_batch) if kind == "bin" else (write_python_batch, read_python_batch)
    got_images, got_labels = read(write(tmp_path / "batch", images, labels))
    assert torch.equal(got_images, images) and torch.equal(got_labels, labels)
    assert got_images.is_contiguous()


def test_binary_file_is_plain_records(tmp_path):
    images, labels = fake_batches()["test_batch"]
    raw = write_binary_batch(tmp_path / "t.bin", images, labels).read_bytes()
    assert len(raw) == TEST * 3073
    assert raw[0] == labels[0] and raw[1:3073] == images[0].numpy().tobytes()


def test_python2_style_pickle_loads(tmp_path):
    images, labels = fake_batches()["test_batch"]
    rows = images.reshape(TEST, 3072).numpy()
    (tmp_path / "data_batch_1").write_bytes(python2_pickle(rows, labels.tolist()))
    got_images, got_labels = read_python_batch(tmp_path / "data_batch_1")
    assert torch.equal(got_images, images) and torch.equal(got_labels, labels)


def test_written_pickle_names_only_safe_globals(tmp_path):
    images, labels = fake_batches()["test_batch"]
    asked = []

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            asked.append((module, name))
            return super().find_class(module, name)

    with open(write_python_batch(tmp_path / "b", images, labels), "rb") as f:
        Recorder(f, encoding="bytes").load()
    assert asked and set(asked) <= set(cifar10.SAFE_GLOBALS)


# ----------------------------------------------------------------------------- loading


@pytest.mark.parametrize("kind", ["bin", "py"])
def test_load_shapes_order_and_normalisation(tmp_path, kind):
    make_dataset(tmp_path, kind)
    batches = fake_batches()
    images, labels = load_cifar10("train", tmp_path)
    assert images.shape == (5 * TRAIN, 3, 32, 32) and images.dtype == torch.float32
    assert labels.shape == (5 * TRAIN,) and labels.dtype == torch.int64
    pixels = torch.cat([batches[name][0] for name in NAMES[:5]])
    assert torch.equal(labels, torch.cat([batches[name][1] for name in NAMES[:5]]))
    for c in range(3):
        expected = (pixels[:, c].float() / 255 - MEAN[c]) / STD[c]
        assert torch.allclose(images[:, c], expected, atol=1e-6)
    test_images, test_labels = load_cifar10("test", tmp_path)
    assert test_images.shape == (TEST, 3, 32, 32) and torch.equal(test_labels, batches["test_batch"][1])


def test_formats_give_identical_tensors(tmp_path):
    make_dataset(tmp_path / "a", "bin")
    make_dataset(tmp_path / "b", "py")
    for split in ("train", "test"):
        for x, y in zip(load_cifar10(split, tmp_path / "a"), load_cifar10(split, tmp_path / "b")):
            assert torch.equal(x, y)


def test_normalisation_constants():
    assert MEAN == (0.4914, 0.4822, 0.4465) and STD == (0.2470, 0.2435, 0.2616)


def test_bad_split_is_named(tmp_path):
    with pytest.raises(ValueError, match="split.*'valid'"):
        load_cifar10("valid", tmp_path)


def test_datasets_registry(tmp_path):
    make_dataset(tmp_path, "bin")
    images, labels = datasets.load("cifar10", "train", tmp_path)
    assert images.shape == (5 * TRAIN, 3, 32, 32) and labels.shape == (5 * TRAIN,)
    assert datasets.get_dataset("cifar10").input_shape == (3, 32, 32)
    assert tuple(images.shape[1:]) == datasets.get_dataset("cifar10").input_shape


# ----------------------------------------------------------------------------- finding


def test_binary_preferred_over_python(tmp_path):
    binary = make_dataset(tmp_path, "bin", seed=0)
    python = make_dataset(tmp_path, "py", seed=1)
    assert find_cifar10(tmp_path) == (binary.resolve(), "bin")
    assert torch.equal(load_cifar10("test", tmp_path)[1], fake_batches(0)["test_batch"][1])
    (binary / "data_batch_3.bin").unlink()  # incomplete binary set: the python one is used
    assert find_cifar10(tmp_path) == (python.resolve(), "py")


@pytest.mark.parametrize("kind", ["bin", "py"])
def test_batches_directory_itself_is_accepted(tmp_path, kind):
    directory = make_dataset(tmp_path, kind)
    assert find_cifar10(directory) == (directory.resolve(), kind)
    renamed = directory.rename(tmp_path / "my_cifar")  # any directory holding the files
    assert find_cifar10(renamed) == (renamed.resolve(), kind)


def test_explicit_dir_wins_over_env_over_cwd_data(isolated, monkeypatch):
    explicit = make_dataset(isolated / "explicit", "bin")
    env = make_dataset(isolated / "env", "py")
    cwd_data = make_dataset(Path("data"), "bin").resolve()
    monkeypatch.setenv(cifar10.ENV_VAR, str(isolated / "env"))
    assert find_cifar10(isolated / "explicit") == (explicit, "bin")
    assert find_cifar10(str(isolated / "explicit")) == (explicit, "bin")
    assert find_cifar10() == (env, "py")
    monkeypatch.delenv(cifar10.ENV_VAR)
    assert find_cifar10() == (cwd_data, "bin")


def test_explicit_dir_does_not_fall_back(isolated, monkeypatch):
    make_dataset(Path("data"), "bin")
    monkeypatch.setenv(cifar10.ENV_VAR, str(Path("data").resolve()))
    with pytest.raises(CIFAR10NotFoundError, match="data_dir"):
        find_cifar10(isolated / "typo")


def test_missing_everywhere_lists_places(isolated):
    partial = make_dataset(Path("data"), "bin")
    (partial / "test_batch.bin").unlink()
    with pytest.raises(CIFAR10NotFoundError) as caught:
        load_cifar10("train")
    message = str(caught.value)
    assert str(partial.resolve()) in message and "missing: test_batch.bin" in message
    assert "no such directory" in message and "cifar-10-batches-py" in message
    assert "--data-dir" in message and cifar10.ENV_VAR in message and "cs.toronto.edu" in message
    assert isinstance(caught.value, FileNotFoundError)


@pytest.mark.parametrize("read", [read_binary_batch, read_python_batch])
def test_missing_file_is_named(tmp_path, read):
    with pytest.raises(CIFAR10NotFoundError, match="nope"):
        read(tmp_path / "nope")


# ----------------------------------------------------------------------------- format errors


@pytest.mark.parametrize("size", [0, 3072, 3073 * 2 + 1, 3074 * 3])
def test_binary_wrong_size(tmp_path, size):
    path = tmp_path / "data_batch_1.bin"
    path.write_bytes(bytes(size))
    with pytest.raises(CIFAR10FormatError, match=rf"data_batch_1\.bin.*3073-byte records.*found {size} bytes"):
        read_binary_batch(path)


def test_truncated_binary_in_dataset_is_named(tmp_path):
    directory = make_dataset(tmp_path, "bin")
    path = directory / "data_batch_4.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CIFAR10FormatError, match="data_batch_4.bin.*truncated"):
        load_cifar10("train", tmp_path)


def test_binary_label_out_of_range(tmp_path):
    records = np.zeros((3, 3073), dtype=np.uint8)
    records[2, 0] = 10
    (tmp_path / "b.bin").write_bytes(records.tobytes())
    with pytest.raises(CIFAR10FormatError, match=r"b\.bin: expected labels in 0\.\.9, found 10 \(record 2\)"):
        read_binary_batch(tmp_path / "b.bin")


def dump(path: Path, obj, protocol: int = 2) -> Path:
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    return path


GOOD = np.zeros((2, 3072), dtype=np.uint8)


@pytest.mark.parametrize(
    "obj, pattern",
    [
        ([1, 2], r"expected a dict with keys b'data' and b'labels', found list"),
        ({"data": GOOD, "labels": [0, 1]}, r"expected a dict with keys b'data' and b'labels', found a dict with keys"),
        ({b"data": GOOD.astype(np.int64), b"labels": [0, 1]}, r"uint8 array of shape \[N, 3072\].*found int64"),
        ({b"data": np.zeros((2, 3, 32, 32), np.uint8), b"labels": [0, 1]}, r"found uint8 array of shape \(2, 3, 32,"),
        ({b"data": np.zeros((2, 3000), np.uint8), b"labels": [0, 1]}, r"found uint8 array of shape \(2, 3000\)"),
        ({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, r"N >= 1, found uint8 array of shape \(0, 3072\)"),
        ({b"data": b"\0" * 3072 * 2, b"labels": [0, 1]}, r"uint8 array.*found bytes"),
        ({b"data": GOOD, b"labels": [0, 1, 2]}, r"expected b'labels' to be 2 ints.*found a list of 3"),
        ({b"data": GOOD, b"labels": [0.0, 1.0]}, r"expected b'labels' to be 2 ints.*item 0 is a float"),
        ({b"data": GOOD, b"labels": np.array([0.0, 1.0])}, r"expected b'labels' to be 2 ints.*found a float64 array"),
        ({b"data": GOOD, b"labels": (0, 1)}, r"expected b'labels' to be 2 ints.*found a tuple"),
        ({b"data": GOOD, b"labels": [0, 2**70]}, r"expected labels in 0\.\.9, found 0\.\.1180591620717411303424"),
        ({b"data": GOOD, b"labels": [0, 12]}, r"expected labels in 0\.\.9, found 12 \(record 1\)"),
        ({b"data": GOOD, b"labels": [-1, 0]}, r"expected labels in 0\.\.9, found -1 \(record 0\)"),
    ],
)
def test_python_batch_contents_checked(tmp_path, obj, pattern):
    path = dump(tmp_path / "data_batch_2", obj)
    with pytest.raises(CIFAR10FormatError, match="data_batch_2: .*" + pattern):
        read_python_batch(path)


def test_labels_of_shared_nested_lists_are_refused_before_any_conversion(tmp_path):
    """A few hundred bytes of pickle: 20 levels of [inner, inner] unfold into 2**21 labels; the structure is
    refused as it is, before numpy expands it."""
    labels = [0, 0]
    for _ in range(20):
        labels = [labels, labels]
    path = dump(tmp_path / "data_batch_1", {b"data": GOOD, b"labels": labels})
    assert path.stat().st_size < 7000
    refused = r"data_batch_1: expected b'labels' to be 2 ints .*found a list whose item 0 is a list"
    with peak_allocation() as peak, pytest.raises(CIFAR10FormatError, match=refused):
        read_python_batch(path)
    assert peak[0] < 1 << 20, f"{peak[0] / 2**20:.0f} MiB allocated to refuse a {path.stat().st_size}-byte file"


def test_labels_as_an_int_array_load(tmp_path):
    path = dump(tmp_path / "data_batch_1", {b"data": GOOD, b"labels": np.array([3, 9], dtype=np.int64)})
    assert read_python_batch(path)[1].tolist() == [3, 9]


@pytest.mark.parametrize("cut", [1, 100, 3000])
def test_truncated_pickle(tmp_path, cut):
    images, labels = fake_batches()["test_batch"]
    path = write_python_batch(tmp_path / "test_batch", images, labels)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(CIFAR10FormatError, match="test_batch: expected a pickled CIFAR-10 python batch.*truncated"):
        read_python_batch(path)


def test_not_a_pickle(tmp_path):
    path = tmp_path / "test_batch"
    path.write_bytes(b"this is not a pickle at all")
    with pytest.raises(CIFAR10FormatError, match="test_batch: .*corrupt pickle"):
        read_python_batch(path)


# ----------------------------------------------------------------------------- unsafe pickles


class SystemPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


class EvalPayload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload", [SystemPayload, EvalPayload])
@pytest.mark.parametrize("where", ["top", "inside"])
@pytest.mark.parametrize("protocol", [2, 5])
def test_malicious_pickle_refused_without_running(tmp_path, payload, where, protocol):
    marker = tmp_path / "pwned"
    evil = payload(marker)
    obj = evil if where == "top" else {b"labels": [0], b"data": evil}
    path = dump(tmp_path / "data_batch_1", obj, protocol)
    refused = r"data_batch_1: refused to unpickle the global (posix\.system|builtins\.eval|__builtin__\.eval)"
    with pytest.raises(CIFAR10FormatError, match=refused):
        read_python_batch(path)
    assert not marker.exists()
    pickle.loads(path.read_bytes())  # the payload is live: an ordinary unpickler runs it
    assert marker.exists()


def test_unknown_module_is_not_imported(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(b"\x80\x02cnot_a_real_module_cifar\nthing\n.")
    with pytest.raises(CIFAR10FormatError, match="not_a_real_module_cifar.thing"):
        read_python_batch(path)
    assert "not_a_real_module_cifar" not in sys.modules


def test_helper_globals_take_only_harmless_arguments(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(CIFAR10FormatError, match="b: .*latin-1"):
        read_python_batch(path)
    path.write_bytes(b"\x80\x02c__builtin__\nbytes\nJ\x00\xe1\xf5\x05\x85R.")  # bytes(10**8)
    with pytest.raises(CIFAR10FormatError, match="b: .*corrupt pickle"):
        read_python_batch(path)


# ----------------------------------------------------------------------------- writers


@pytest.mark.parametrize("write", [write_binary_batch, write_python_batch])
def test_writers_check_arguments(tmp_path, write):
    images, labels = fake_batches()["test_batch"]
    with pytest.raises(ValueError, match=r"argument 'images' expected uint8 \[N, 3, 32, 32\]"):
        write(tmp_path / "x", images.float(), labels)
    with pytest.raises(ValueError, match=r"argument 'images'"):
        write(tmp_path / "x", images[:, :1], labels)
    with pytest.raises(ValueError, match=r"argument 'labels' expected 5 ints in 0\.\.9"):
        write(tmp_path / "x", images, labels[:4])
    with pytest.raises(ValueError, match=r"argument 'labels'"):
        write(tmp_path / "x", images, labels + 10)
    assert not (tmp_path / "x").exists()

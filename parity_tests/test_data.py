"""The MNIST data module: finding, reading, normalising, batching, downloading.

Real-data tests read $SIMPLE_CONV_NET_DATA if it is set, else ../shared/mnist beside the repository; everything else
uses small test-made IDX files. Downloads are served by a local HTTP server on
127.0.0.1; nothing touches the network.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import math
import os
import socket
import threading
from pathlib import Path

import pytest
import torch
from conftest import peak_allocation

from simple_conv_net import data
from simple_conv_net.data import (
    CONTENT_MD5S,
    FILES,
    MD5S,
    Batches,
    MNISTDownloadError,
    MNISTFormatError,
    MNISTNotFoundError,
    download_mnist,
    find_mnist,
    load_mnist,
    read_idx,
)

SHARED = Path(os.environ.get(data.ENV_VAR) or Path(__file__).resolve().parents[1] / ".." / "shared" / "mnist").resolve()
needs_real_mnist = pytest.mark.skipif(
    not all((SHARED / f"{name}.gz").is_file() for name in FILES), reason=f"real MNIST not found in {SHARED}"
)


# ----------------------------------------------------------------------------- helpers


def idx_bytes(array: torch.Tensor) -> bytes:
    """An unsigned-byte IDX file holding ``array`` (uint8)."""
    header = bytes([0, 0, 0x08, array.dim()]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.contiguous().numpy().tobytes()


def fake_split(count: int, seed: int) -> tuple[bytes, bytes]:
    """IDX bytes of ``count`` random 28x28 images and their labels."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (count, 28, 28), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (count,), dtype=torch.uint8, generator=generator)
    return idx_bytes(images), idx_bytes(labels)


def fake_files(count_train: int = 12, count_test: int = 7) -> dict[str, bytes]:
    """Gzipped bytes of four small MNIST-like files, by .gz file name."""
    train, test = fake_split(count_train, 0), fake_split(count_test, 1)
    raw = dict(zip(FILES, train + test))
    return {f"{name}.gz": gzip.compress(content, mtime=0) for name, content in raw.items()}


def write_files(directory: Path, files: dict[str, bytes]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (directory / name).write_bytes(content)
    return directory


def md5(content: bytes) -> str:
    return hashlib.md5(content).hexdigest()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Run in an empty directory with no env var and no repository shared dir."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setattr(data, "REPO_SHARED_DIR", tmp_path / "repo_shared_absent")
    work = tmp_path / "project" / "work"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    return tmp_path


# ----------------------------------------------------------------------------- real files


@pytest.fixture(scope="module")
def real_test():
    return load_mnist("test", SHARED)


@pytest.fixture(scope="module")
def real_train():
    return load_mnist("train", SHARED)


@needs_real_mnist
def test_real_test_split(real_test):
    images, labels = real_test
    assert images.shape == (10000, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (10000,) and labels.dtype == torch.int64
    assert labels.tolist()[:5] == [7, 2, 1, 0, 4]
    assert labels.min() == 0 and labels.max() == 9
    assert images.min().item() == pytest.approx(-0.1307 / 0.3081, abs=1e-6)
    assert images.max().item() == pytest.approx((1 - 0.1307) / 0.3081, abs=1e-6)


@needs_real_mnist
def test_real_train_split_is_normalised(real_train):
    images, labels = real_train
    assert images.shape == (60000, 1, 28, 28) and images.dtype == torch.float32
    assert labels.shape == (60000,) and labels.dtype == torch.int64
    assert set(labels.unique().tolist()) == set(range(10))
    assert abs(images.mean().item()) < 0.01
    assert abs(images.std().item() - 1) < 0.01


@needs_real_mnist
def test_real_files_match_checksum_table():
    # The shared copies are recompressed, so their .gz bytes need not match
    # MD5S (the mirrors' files); their decompressed content must match CONTENT_MD5S.
    for name in MD5S:
        content = gzip.decompress((SHARED / name).read_bytes())
        assert md5(content) == CONTENT_MD5S[name[: -len(".gz")]], name
        assert data._md5_matches(SHARED / name, name, MD5S[name]), name


@needs_real_mnist
def test_uncompressed_reads_like_gzip(tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(gzip.decompress((SHARED / f"{name}.gz").read_bytes()))
        assert torch.equal(read_idx(tmp_path / name), read_idx(SHARED / f"{name}.gz"))
    assert read_idx(tmp_path / "t10k-images-idx3-ubyte").shape == (10000, 28, 28)


def test_uncompressed_split_loads_like_gzip(tmp_path):
    gz = write_files(tmp_path / "gz", fake_files())
    plain = write_files(tmp_path / "plain", {n[:-3]: gzip.decompress(c) for n, c in fake_files().items()})
    for split in ("train", "test"):
        for a, b in zip(load_mnist(split, gz, check_md5=False), load_mnist(split, plain, check_md5=False)):
            assert torch.equal(a, b)


def test_normalisation_formula(tmp_path):
    write_files(tmp_path, fake_files())
    images, _ = load_mnist("test", tmp_path, check_md5=False)
    pixels = read_idx(tmp_path / "t10k-images-idx3-ubyte.gz")
    assert torch.allclose(images[:, 0], (pixels.float() / 255 - 0.1307) / 0.3081, atol=1e-6)


def test_bad_split_is_named():
    with pytest.raises(ValueError, match="split.*'valid'"):
        load_mnist("valid")


# ----------------------------------------------------------------------------- search order


def test_explicit_dir_wins_over_env_over_cwd_data_over_shared(isolated, monkeypatch):
    files = fake_files()
    explicit = write_files(isolated / "explicit", files)
    env = write_files(isolated / "env", files)
    cwd_data = write_files(Path("data"), files).resolve()
    shared = write_files(Path("..") / "shared" / "mnist", files).resolve()

    monkeypatch.setenv(data.ENV_VAR, str(env))
    assert find_mnist(explicit) == explicit
    assert find_mnist(str(explicit)) == explicit
    assert find_mnist() == env
    monkeypatch.delenv(data.ENV_VAR)
    assert find_mnist() == cwd_data
    for name in files:
        (cwd_data / name).unlink()
    assert find_mnist() == shared


def test_repository_shared_dir_is_last(isolated, monkeypatch):
    repo_shared = write_files(isolated / "repo" / "shared", fake_files())
    monkeypatch.setattr(data, "REPO_SHARED_DIR", repo_shared)
    assert find_mnist() == repo_shared


def test_torchvision_layout_is_found(isolated):
    raw = write_files(Path("data") / "MNIST" / "raw", fake_files()).resolve()
    assert find_mnist() == raw
    explicit_raw = write_files(isolated / "mine" / "MNIST" / "raw", fake_files())
    assert find_mnist(isolated / "mine") == explicit_raw


def test_explicit_dir_does_not_fall_back(isolated):
    write_files(Path("data"), fake_files())
    with pytest.raises(MNISTNotFoundError, match="data_dir"):
        find_mnist(isolated / "typo")


def test_missing_everywhere_lists_places(isolated):
    partial = write_files(Path("data"), dict(list(fake_files().items())[:2]))
    with pytest.raises(MNISTNotFoundError) as raised:
        find_mnist()
    message = str(raised.value)
    for place in (partial.resolve(), partial.resolve() / "MNIST" / "raw", (isolated / "project" / "shared" / "mnist"),
                  data.REPO_SHARED_DIR.resolve()):
        assert str(place) in message
    assert "--data-dir" in message and "--download" in message
    assert "missing: t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte" in message
    assert isinstance(raised.value, FileNotFoundError)


def test_env_var_missing_names_it(isolated, monkeypatch):
    monkeypatch.setenv(data.ENV_VAR, str(isolated / "nowhere"))
    with pytest.raises(MNISTNotFoundError, match=data.ENV_VAR):
        load_mnist("test")


# ----------------------------------------------------------------------------- reader errors


def break_file(tmp_path: Path, name: str, content: bytes) -> Path:
    files = fake_files()
    files[name] = content
    return write_files(tmp_path, files)


def raw_of(name: str) -> bytes:
    return gzip.decompress(fake_files()[name])


def test_truncated_file(tmp_path):
    name = "t10k-images-idx3-ubyte.gz"
    directory = break_file(tmp_path, name, gzip.compress(raw_of(name)[:-5]))
    expected = len(raw_of(name))
    with pytest.raises(MNISTFormatError, match=rf"{name}: truncated.*needs {expected} bytes, found {expected - 5}"):
        load_mnist("test", directory, check_md5=False)


def test_trailing_bytes(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(raw_of("t10k-labels-idx1-ubyte.gz") + b"\0")
    with pytest.raises(MNISTFormatError, match="t10k-labels-idx1-ubyte: has trailing bytes"):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(MNISTFormatError, match="x-idx3-ubyte: truncated header: expected 16 bytes"):
        read_idx(path)


def test_wrong_magic(tmp_path):
    name = "train-images-idx3-ubyte.gz"
    directory = break_file(tmp_path, name, gzip.compress(b"\x12\x34\x56\x78" + raw_of(name)[4:]))
    with pytest.raises(MNISTFormatError, match=rf"{name}: wrong magic number, expected 2051 \(images\), "
                                               rf"got 305419896 \(0x12345678\)"):
        load_mnist("train", directory, check_md5=False)


def test_labels_where_images_belong(tmp_path):
    name = "t10k-images-idx3-ubyte.gz"
    directory = break_file(tmp_path, name, fake_files()["t10k-labels-idx1-ubyte.gz"])
    with pytest.raises(MNISTFormatError, match=rf"{name}: wrong magic number, expected 2051 \(images\), got 2049"):
        load_mnist("test", directory, check_md5=False)


@pytest.mark.parametrize("content", [b"not gzip at all", None], ids=["not-gzip", "truncated-gzip"])
def test_bad_gzip(tmp_path, content):
    name = "t10k-labels-idx1-ubyte.gz"
    directory = break_file(tmp_path, name, content or fake_files()[name][:-10])
    with pytest.raises(MNISTFormatError, match=rf"{name}: expected a gzip-compressed IDX file"):
        load_mnist("test", directory, check_md5=False)


def test_count_mismatch(tmp_path):
    images, _ = fake_split(5, 0)
    _, labels = fake_split(6, 0)
    directory = break_file(tmp_path, "t10k-images-idx3-ubyte.gz", gzip.compress(images))
    (directory / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels))
    with pytest.raises(MNISTFormatError, match="t10k-images-idx3-ubyte.gz holds 5 images but .*t10k-labels-idx1-ubyte.gz holds 6"):
        load_mnist("test", directory, check_md5=False)


def test_label_out_of_range(tmp_path):
    name = "t10k-labels-idx1-ubyte.gz"
    directory = break_file(tmp_path, name, gzip.compress(idx_bytes(torch.full((7,), 10, dtype=torch.uint8))))
    with pytest.raises(MNISTFormatError, match=rf"{name}: expected labels in 0..9, found 10"):
        load_mnist("test", directory, check_md5=False)


def test_empty_split_is_refused_at_load_time(tmp_path):
    empty = {"t10k-images-idx3-ubyte.gz": idx_bytes(torch.zeros(0, 28, 28, dtype=torch.uint8)),
             "t10k-labels-idx1-ubyte.gz": idx_bytes(torch.zeros(0, dtype=torch.uint8))}
    directory = write_files(tmp_path, {**fake_files(), **{name: gzip.compress(raw) for name, raw in empty.items()}})
    with pytest.raises(MNISTFormatError, match=r"t10k-images-idx3-ubyte.gz: holds no images \(N = 0\)"):
        load_mnist("test", directory, check_md5=False)


def test_gzip_bomb_is_stopped_at_what_the_header_promises(tmp_path):
    """10 labels promised, 64 MiB of zeros behind them: reading stops past the 10, not after inflating it all."""
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(torch.zeros(10, dtype=torch.uint8)) + bytes(64 << 20), compresslevel=1))
    with peak_allocation() as peak, pytest.raises(MNISTFormatError, match="has trailing bytes"):
        read_idx(path)
    assert peak[0] < 8 << 20, f"{peak[0] / 2**20:.0f} MiB allocated to read 18 bytes"


@pytest.mark.parametrize("check_md5, dims, expected", [
    (False, (1, 2000, 10000), r"expected N x 28 x 28, found 1 x 2000 x 10000"),
    (True, (25_000, 28, 28), r"expected 10000 x 28 x 28 \(the real MNIST test split.*--no-md5-check"),
])
def test_a_header_promising_other_images_is_refused_before_reading(tmp_path, check_md5, dims, expected):
    """A 28x28 images file is known from its header: one whose header promises other images (20 MB of
    1 x 2000 x 10000, or 25000 28x28 images where the real test split is checked), with the bytes it
    promises behind it, is refused there, before those bytes are read."""
    header = (2051).to_bytes(4, "big") + b"".join(size.to_bytes(4, "big") for size in dims)
    promised = math.prod(dims)
    directory = break_file(tmp_path, "t10k-images-idx3-ubyte.gz", gzip.compress(header + bytes(promised), 1))
    with peak_allocation() as peak, pytest.raises(MNISTFormatError, match=expected):
        load_mnist("test", directory, check_md5=check_md5)
    assert peak[0] < 8 << 20, f"{peak[0] / 2**20:.0f} MiB allocated to read a 16-byte header"


def test_images_file_with_the_labels_magic_says_so(tmp_path):
    raw = bytearray(raw_of("t10k-images-idx3-ubyte.gz"))
    raw[3] = 1  # magic 0x00000801 = 2049, the labels' magic; the rest is still an images file
    directory = break_file(tmp_path, "t10k-images-idx3-ubyte.gz", gzip.compress(bytes(raw)))
    with pytest.raises(MNISTFormatError, match=r"t10k-images-idx3-ubyte.gz: wrong magic number, expected 2051 "
                                               r"\(images\), got 2049"):
        load_mnist("test", directory, check_md5=False)


@needs_real_mnist
def test_a_flipped_byte_in_a_real_file_fails_its_md5(tmp_path):
    """The canonical files are checked against the real files' MD5 (of their content, so an uncompressed
    copy is checked too); check_md5=False loads data of your own under the same names."""
    write_files(tmp_path, {name: content for name, content in fake_files().items() if name.startswith("train")})
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes((SHARED / "t10k-labels-idx1-ubyte.gz").read_bytes())
    images = bytearray(gzip.decompress((SHARED / "t10k-images-idx3-ubyte.gz").read_bytes()))
    images[16 + 5 * 784 + 400] ^= 0x01  # one pixel of image 5
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(bytes(images))
    with pytest.raises(MNISTFormatError, match=r"t10k-images-idx3-ubyte: MD5 .* differs from the real MNIST "
                                               r"file's .*--no-md5-check"):
        load_mnist("test", tmp_path)
    loaded, _ = load_mnist("test", tmp_path, check_md5=False)
    assert loaded.shape == (10000, 1, 28, 28)


def test_missing_file_for_read_idx(tmp_path):
    with pytest.raises(MNISTNotFoundError, match="nothing.gz"):
        read_idx(tmp_path / "nothing.gz")


# ----------------------------------------------------------------------------- batches


def numbered(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images whose single pixel is the sample's index, and labels equal to it."""
    return torch.arange(n, dtype=torch.float32).reshape(n, 1, 1, 1), torch.arange(n)


def order(batches: Batches, epoch: int) -> list[int]:
    seen = []
    for images, labels in batches.epoch(epoch):
        assert torch.equal(images.flatten().long(), labels)  # rows stay paired
        seen += labels.tolist()
    return seen


def test_unshuffled_batches_keep_order():
    batches = Batches(*numbered(10), batch_size=3)
    assert len(batches) == 4 and batches.num_samples == 10
    assert [len(labels) for _, labels in batches] == [3, 3, 3, 1]
    assert order(batches, 0) == order(batches, 5) == list(range(10))


def test_shuffle_is_a_function_of_seed_and_epoch():
    first = Batches(*numbered(100), batch_size=16, shuffle=True, seed=7)
    fresh = Batches(*numbered(100), batch_size=16, shuffle=True, seed=7)
    rng_state = torch.get_rng_state()
    orders = [order(first, epoch) for epoch in range(3)]
    assert order(fresh, 2) == orders[2]  # a resumed run: epoch 2 without epochs 0 and 1
    assert order(fresh, 0) == orders[0]
    assert torch.equal(torch.get_rng_state(), rng_state)  # the global RNG is untouched
    torch.manual_seed(123)
    assert order(fresh, 1) == orders[1]  # and does not matter
    assert len({tuple(o) for o in orders}) == 3  # epochs differ
    assert all(sorted(o) == list(range(100)) for o in orders)  # each sample exactly once
    other_seed = Batches(*numbered(100), batch_size=16, shuffle=True, seed=8)
    assert order(other_seed, 0) != orders[0]
    assert [len(labels) for _, labels in first.epoch(0)] == [16] * 6 + [4]


def test_limit_takes_first_samples():
    batches = Batches(*numbered(50), batch_size=4, shuffle=True, seed=1, limit=10)
    assert batches.num_samples == 10 and len(batches) == 3
    assert sorted(order(batches, 0)) == list(range(10))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(batch_size=0), "batch_size.*got 0"),
        (dict(batch_size=2, limit=11), "limit.*at most 10.*got 11"),
        (dict(batch_size=2, limit=0), "limit.*got 0"),
        (dict(batch_size=2, seed=-1), "seed.*got -1"),
    ],
)
def test_batches_reject_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Batches(*numbered(10), **kwargs)


def test_batches_reject_mismatched_lengths():
    images, labels = numbered(10)
    with pytest.raises(ValueError, match="10 images and 9 labels"):
        Batches(images, labels[:9], batch_size=2)


# ----------------------------------------------------------------------------- download

TIMEOUT = 5.0


@pytest.fixture
def server():
    """A local HTTP server: set ``server.routes[path] = bytes``; ``server.log`` records requested paths."""
    routes: dict[str, bytes] = {}
    log: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            log.append(self.path)
            body = routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    httpd.routes, httpd.log = routes, log
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(TIMEOUT)


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/dead/"


def serve(server, mirror: str, files: dict[str, bytes]) -> str:
    for name, content in files.items():
        server.routes[f"/{mirror}/{name}"] = content
    return f"{server.url}/{mirror}/"


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name not in MD5S)


def test_download_verifies_and_loads(server, tmp_path):
    files = fake_files()
    root = download_mnist(tmp_path / "new" / "dir", [serve(server, "m1", files)], {n: md5(c) for n, c in files.items()}, TIMEOUT)
    assert sorted(p.name for p in root.iterdir()) == sorted(files)
    assert all((root / n).read_bytes() == c for n, c in files.items())
    images, labels = load_mnist("train", root, check_md5=False)  # test-made files under the standard names
    assert images.shape == (12, 1, 28, 28) and labels.shape == (12,)
    assert sorted(server.log) == sorted(f"/m1/{n}" for n in files)


def test_download_falls_back_to_next_mirror(server, tmp_path):
    files = fake_files()
    bad = dict(files)
    bad["train-images-idx3-ubyte.gz"] = files["train-images-idx3-ubyte.gz"][:-100]  # truncated
    bad["t10k-labels-idx1-ubyte.gz"] = fake_files(3, 3)["t10k-labels-idx1-ubyte.gz"]  # wrong checksum
    del bad["train-labels-idx1-ubyte.gz"]  # 404
    mirrors = [closed_port_url(), serve(server, "m1", bad), serve(server, "m2", files)]
    root = download_mnist(tmp_path, mirrors, {n: md5(c) for n, c in files.items()}, TIMEOUT)
    assert all((root / n).read_bytes() == c for n, c in files.items())
    assert leftovers(root) == []
    assert sorted(p for p in server.log if p.startswith("/m2/")) == sorted(
        f"/m2/{n}" for n in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    )


def test_download_fails_cleanly_when_every_mirror_is_bad(server, tmp_path):
    files = fake_files()
    name = "t10k-images-idx3-ubyte.gz"
    bad = dict(files, **{name: files[name][:-50]})
    worse = dict(files, **{name: b"garbage"})
    mirrors = [serve(server, "m1", bad), serve(server, "m2", worse)]
    with pytest.raises(MNISTDownloadError) as raised:
        download_mnist(tmp_path, mirrors, {n: md5(c) for n, c in files.items()}, TIMEOUT)
    message = str(raised.value)
    assert name in message and "checksum mismatch" in message
    assert f"{mirrors[0]}{name}" in message and f"{mirrors[1]}{name}" in message
    assert not (tmp_path / name).exists()
    assert leftovers(tmp_path) == []


def test_download_skips_files_already_present(server, tmp_path):
    files = fake_files()
    present = "train-images-idx3-ubyte.gz"
    corrupt = "t10k-labels-idx1-ubyte.gz"
    (tmp_path / present).write_bytes(files[present])
    (tmp_path / corrupt).write_bytes(b"stale")
    download_mnist(tmp_path, [serve(server, "m1", files)], {n: md5(c) for n, c in files.items()}, TIMEOUT)
    assert f"/m1/{present}" not in server.log
    assert f"/m1/{corrupt}" in server.log
    assert all((tmp_path / n).read_bytes() == c for n, c in files.items())


def test_download_accepts_a_recompressed_copy_of_the_real_file(server, tmp_path, monkeypatch):
    # A .gz whose own MD5 differs but whose content matches CONTENT_MD5S is kept.
    name = "t10k-labels-idx1-ubyte.gz"
    monkeypatch.setitem(data.CONTENT_MD5S, name[: -len(".gz")], md5(b"real"))
    (tmp_path / name).write_bytes(gzip.compress(b"real", mtime=0))
    download_mnist(tmp_path, [serve(server, "m1", {})], {name: "0" * 32}, TIMEOUT)
    assert server.log == []


def test_download_rejects_a_string_of_mirrors(tmp_path):
    with pytest.raises(TypeError, match="mirrors"):
        download_mnist(tmp_path, "http://127.0.0.1:1/")

"""simple_conv_net.report end to end on a small checkpoint and 200 real MNIST test images."""

import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
import torch

from simple_conv_net import data
from simple_conv_net.model import SimpleConvNet
from simple_conv_net.report import accuracy, confusion_matrix, main, make_report, precision_recall

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SAMPLES = 200
FIGURES = ("confusion_matrix.png", "filters.png", "input.png", "features_conv.png", "features_pool.png",
           "misclassified.png", "training_curves.png")
# figsize (inches) x 100 dpi of each figure for SimpleConvNet on MNIST (see report.py's plot functions).
SIZES = {"confusion_matrix.png": (850, 800), "filters.png": (550, 490), "input.png": (250, 270),
         "features_conv.png": (600, 530), "features_pool.png": (600, 530), "training_curves.png": (1000, 400)}


def png_size(path):
    header = Path(path).read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n" and header[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", header[16:24])


# ----------------------------------------------------------------------------- pure metrics


def test_confusion_matrix_precision_recall_by_hand():
    pred = [0, 0, 1, 1, 2, 2, 2]
    target = [0, 1, 1, 1, 2, 0, 2]
    cm = confusion_matrix(pred, target, 4)
    assert cm.tolist() == [[1, 0, 1, 0],    # true 0: predicted 0 once, 2 once
                           [1, 2, 0, 0],    # true 1: predicted 0 once, 1 twice
                           [0, 0, 2, 0],
                           [0, 0, 0, 0]]    # class 3 never seen nor predicted
    precision, recall = precision_recall(cm)
    assert precision == [1 / 2, 2 / 2, 2 / 3, None]    # per predicted column
    assert recall == [1 / 2, 2 / 3, 2 / 2, None]       # per true row
    assert accuracy(cm) == 5 / 7


def test_confusion_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="same length"):
        confusion_matrix([0, 1], [0], 2)
    with pytest.raises(ValueError, match="'pred' expected classes in 0..1"):
        confusion_matrix([0, 2], [0, 1], 2)


# ----------------------------------------------------------------------------- end to end


def write_checkpoint(directory: Path, steps: int = 30) -> Path:
    """A checkpoint in train.py's format: SimpleConvNet('torch') after a few SGD steps, metrics.jsonl beside it."""
    torch.manual_seed(0)
    model = SimpleConvNet("torch")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    images, labels = data.load_mnist("train")
    for step in range(steps):
        batch = slice(64 * step, 64 * (step + 1))
        optimizer.zero_grad()
        model.loss(model(images[batch]), labels[batch]).backward()
        optimizer.step()
    metrics = [{"epoch": 1, "impl": "torch", "train_loss": 1.9, "seconds": 1.0, "images_per_second": 960.0,
                "test_loss": 1.2, "test_accuracy": 0.61},
               {"epoch": 2, "impl": "torch", "train_loss": 0.8, "seconds": 1.0, "images_per_second": 960.0,
                "test_loss": 0.6, "test_accuracy": 0.83}]
    args = {"impl": "torch", "model": "simple", "dataset": "mnist", "batch_size": 64, "test_batch_size": 1000,
            "epochs": 2, "lr": 0.05, "momentum": 0.5, "seed": 0, "data_dir": None, "out": str(directory)}
    directory.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": 2,
                "rng": {"torch": torch.get_rng_state(), "cuda": []}, "metrics": metrics, "args": args},
               directory / "checkpoint.pt")
    (directory / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in metrics))
    return directory / "checkpoint.pt"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The command itself (python -m simple_conv_net.report), once; every test reads what it wrote."""
    base = tmp_path_factory.mktemp("report")
    checkpoint = write_checkpoint(base / "run")
    out = base / "out"
    result = subprocess.run([sys.executable, "-m", "simple_conv_net.report", "--checkpoint", str(checkpoint),
                             "--test-samples", str(SAMPLES), "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120,
                            env={k: v for k, v in os.environ.items()
                                 if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")})  # headless
    assert result.returncode == 0, result.stderr
    return checkpoint, out, json.loads((out / "report.json").read_text()), result.stdout


def test_writes_every_file(run):
    _, out, report, stdout = run
    assert sorted(p.name for p in out.iterdir()) == sorted([*FIGURES, "index.html", "report.json"])  # no .tmp left
    assert f"{SAMPLES} test images, accuracy" in stdout and "confusion matrix" in stdout
    assert sorted(f["file"] for f in report["figures"].values()) == sorted(FIGURES)


def test_pngs_are_valid_images_of_the_expected_size(run):
    from matplotlib.image import imread

    _, out, report, _ = run
    for figure in report["figures"].values():
        path = out / figure["file"]
        width, height = png_size(path)
        assert (width, height) == (figure["width"], figure["height"]), figure["file"]
        assert SIZES.get(figure["file"], (width, height)) == (width, height), figure["file"]
        assert imread(path).shape[:2] == (height, width), figure["file"]   # decodes whole
        assert width >= 200 and height >= 200


def test_confusion_matrix_sums_to_the_images_and_gives_the_accuracy(run):
    checkpoint, _, report, _ = run
    cm = torch.tensor(report["confusion_matrix"]["matrix"])
    assert cm.shape == (10, 10) and int(cm.sum()) == SAMPLES == report["evaluated"]
    assert float(cm.trace()) / float(cm.sum()) == pytest.approx(report["accuracy"], abs=1e-12)
    assert [c["support"] for c in report["per_class"]] == cm.sum(1).tolist()
    assert (report["precision"], report["recall"]) == precision_recall(cm)
    # the same accuracy and matrix from the weights, computed here with native torch
    state = torch.load(checkpoint, weights_only=True)
    model = SimpleConvNet("torch")
    model.load_state_dict(state["model"])
    images, labels = data.load_mnist("test")
    with torch.no_grad():
        predictions = model(images[:SAMPLES]).argmax(1)
    assert torch.equal(confusion_matrix(predictions, labels[:SAMPLES], 10), cm)
    misclassified = report["misclassified"]
    assert misclassified["count"] == SAMPLES - int(cm.trace()) and 0 < len(misclassified["shown"]) <= 24
    for item in misclassified["shown"]:
        assert item["true"] == int(labels[item["index"]]) != item["predicted"] == int(predictions[item["index"]])
    assert [m["probability"] for m in misclassified["shown"]] == sorted((m["probability"] for m in
                                                                         misclassified["shown"]), reverse=True)


def test_filters_and_feature_maps_are_the_model_s(run):
    checkpoint, _, report, _ = run
    state = torch.load(checkpoint, weights_only=True)
    model = SimpleConvNet("torch")
    model.load_state_dict(state["model"])
    assert report["filters"]["layer"] == "conv_layer" and report["filters"]["shape"] == [20, 1, 5, 5]
    torch.testing.assert_close(torch.tensor(report["filters"]["values"]).float(), state["model"]["conv_layer.weight"],
                               atol=1e-6, rtol=0)
    layers = report["feature_maps"]["layers"]
    assert {name: layer["shape"] for name, layer in layers.items()} == {"conv": [20, 24, 24], "pool": [20, 12, 12]}
    images, _ = data.load_mnist("test")
    with torch.no_grad():
        _, intermediates = model(images[:1], return_intermediates=True)
    for name in ("conv", "pool"):
        torch.testing.assert_close(torch.tensor(layers[name]["values"]).float(), intermediates[name][0],
                                   atol=1e-5, rtol=0)
    assert [e["epoch"] for e in report["training_curves"]["epochs"]] == [1, 2]
    assert report["layers"]["total"]["params"] == 1_446_030


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        elif tag == "a":
            self.links.append(attrs["href"])


def test_page_references_every_image_and_every_reference_exists(run):
    _, out, report, _ = run
    page = (out / "index.html").read_text()
    links = Links()
    links.feed(page)
    assert sorted(links.images) == sorted(FIGURES)
    for reference in links.images + links.links:
        assert "/" not in reference and ":" not in reference, f"{reference} is not relative"
        assert (out / reference).is_file(), reference
    assert f"{100 * report['accuracy']:.2f}%" in page and "1,446,030" in page


def test_curves_are_the_epochs_the_checkpoint_has_seen(run, tmp_path):
    """The checkpoint is the record of the run: a metrics.jsonl beside it that is ahead of it (an epoch the
    model never saw) is not drawn. Also: --impl other than the checkpoint's, the default --out, --image-index."""
    checkpoint, _, _, _ = run
    (tmp_path / "run").mkdir()
    copied = shutil.copy(checkpoint, tmp_path / "run" / "checkpoint.pt")
    saved = torch.load(checkpoint, weights_only=True)["metrics"]
    ahead = [*saved, {**saved[-1], "epoch": 3, "test_accuracy": 0.99}]
    (tmp_path / "run" / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in ahead))
    report = make_report(copied, impl="vector", test_samples=50, image_index=7)
    out = tmp_path / "run" / "report"
    assert Path(report["out"]) == out and (out / "training_curves.png").is_file()
    assert report["training_curves"]["epochs"] == saved
    assert report["impl"] == "vector" and report["checkpoint_impl"] == "torch"
    assert report["feature_maps"]["image_index"] == 7
    model = SimpleConvNet("torch")
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["model"])
    images, labels = data.load_mnist("test")
    with torch.no_grad():
        native = confusion_matrix(model(images[:50]).argmax(1), labels[:50], 10)
    assert report["confusion_matrix"]["matrix"] == native.tolist()   # vector ops, same predictions


def test_errors_name_the_argument(tmp_path, capsys):
    assert main(["--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "argument --checkpoint: no such file" in capsys.readouterr().err
    (tmp_path / "text.pt").write_text("not a checkpoint")
    assert main(["--checkpoint", str(tmp_path / "text.pt")]) == 2
    assert "argument --checkpoint" in capsys.readouterr().err
    torch.save(SimpleConvNet("torch").state_dict(), tmp_path / "model.pt")
    assert main(["--checkpoint", str(tmp_path / "model.pt")]) == 2
    assert "bare state_dict" in capsys.readouterr().err
    torch.save({"weights": torch.zeros(1), "step": 3}, tmp_path / "other.pt")
    assert main(["--checkpoint", str(tmp_path / "other.pt")]) == 2
    assert "not one of train.py's checkpoints" in capsys.readouterr().err


CHECK_IMAGES = """<script>
window.addEventListener('load', function () {
  var images = Array.prototype.slice.call(document.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  var result = document.createElement('pre');
  result.id = 'image-check';
  result.textContent = 'IMAGES ' + images.length + ' BROKEN ' + broken.length + ' ' +
                       broken.map(function (i) { return i.getAttribute('src'); }).join(',');
  document.body.appendChild(result);
});
</script></body>"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} not installed: the page is not rendered")
def test_page_renders_in_headless_chromium(run):
    _, out, report, _ = run
    checked = out.parent / "checked"
    shutil.copytree(out, checked, dirs_exist_ok=True)
    page = checked / "index.html"
    page.write_text(page.read_text().replace("</body>", CHECK_IMAGES))
    with tempfile.TemporaryDirectory() as profile:
        result = subprocess.run(
            [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--allow-file-access-from-files", "--virtual-time-budget=5000",
             "--dump-dom", page.as_uri()],
            capture_output=True, text=True, timeout=60)
    assert f"IMAGES {len(report['figures'])} BROKEN 0 " in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]

"""Look inside a trained network: evaluate a checkpoint and draw what it learned.

    python -m simple_conv_net.report --checkpoint runs/simple-vector-.../checkpoint.pt
    python -m simple_conv_net.report --checkpoint CKPT --impl torch --test-samples 1000 --out DIR

The model is built with build_model from the checkpoint's own arguments (model, dataset,
impl) and evaluated on that dataset's test set with ``--impl`` (default: the checkpoint's).
Written to ``--out`` (default ``<checkpoint dir>/report``), each file atomically:

    confusion_matrix.png    rows = true class, columns = predicted class (seed 004, ex. 6)
    filters.png             the first convolution layer's filters (seed 004, ex. 6)
    input.png               the chosen test image (``--image-index``, default 0)
    features_<layer>.png    every channel of each convolution and pooling layer's output for
                            that image, one figure per layer (seed 003, section 7, Q8)
    misclassified.png       misclassified test images, most confident first, with true and
                            predicted labels and the predicted probability
    training_curves.png     loss and accuracy per epoch from metrics.jsonl beside the checkpoint
                            (skipped, with a note, when there is none)
    report.json             every figure's numbers: the confusion matrix, per-class precision and
                            recall, accuracy, filter weights, feature maps, the misclassified images'
                            indices, the per-epoch metrics, the per-layer parameter and multiply-add counts
    index.html              all of the above on one page, with relative image paths (open it from disk)

Precision of class k = cm[k, k] / (column k's sum: images predicted k); recall of class k =
cm[k, k] / (row k's sum: images of class k); either is None (null) when its denominator is 0.
Figures are drawn with matplotlib's Agg backend: no display is needed.
"""

from __future__ import annotations

import argparse
import html
import io as _bytes_io
import json
import math
import pickle
import struct
import sys
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from . import data, datasets
from .backends import IMPLS
from .io import atomic_write_bytes, atomic_write_text
from .model import MODELS, build_model
from .summary import count, totals

DPI = 100
MAX_MISCLASSIFIED = 24
METRICS = "metrics.jsonl"


class ReportError(Exception):
    """A bad argument or input, with a message naming it."""


# ----------------------------------------------------------------------------- metrics (pure functions)


def confusion_matrix(pred, target, n: int) -> torch.Tensor:
    """int64 [n, n]: entry [t, p] counts the samples of true class t predicted as p."""
    pred = torch.as_tensor(pred).long().flatten().cpu()
    target = torch.as_tensor(target).long().flatten().cpu()
    if pred.shape != target.shape:
        raise ValueError(f"confusion_matrix(): arguments 'pred' and 'target' expected the same length, "
                         f"got {len(pred)} and {len(target)}")
    for name, values in (("pred", pred), ("target", target)):
        if len(values) and (int(values.min()) < 0 or int(values.max()) >= n):
            raise ValueError(f"confusion_matrix(): argument '{name}' expected classes in 0..{n - 1}, "
                             f"found {int(values.min())}..{int(values.max())}")
    return torch.bincount(target * n + pred, minlength=n * n).reshape(n, n)


def precision_recall(cm) -> tuple[list, list]:
    """(precision, recall) per class of a confusion matrix (rows true, columns predicted);
    None where the denominator is 0 (no image predicted as / belonging to that class)."""
    cm = torch.as_tensor(cm, dtype=torch.float64)
    diagonal, predicted, actual = cm.diagonal(), cm.sum(dim=0), cm.sum(dim=1)
    precision = [float(d / p) if p > 0 else None for d, p in zip(diagonal, predicted)]
    recall = [float(d / a) if a > 0 else None for d, a in zip(diagonal, actual)]
    return precision, recall


def accuracy(cm) -> float:
    cm = torch.as_tensor(cm, dtype=torch.float64)
    return float(cm.diagonal().sum() / cm.sum()) if cm.sum() > 0 else float("nan")


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    header = Path(path).read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    return struct.unpack(">II", header[16:24])


# ----------------------------------------------------------------------------- loading


def find_checkpoint(path) -> Path:
    path = Path(path)
    if path.is_dir() and (path / "checkpoint.pt").is_file():
        return path / "checkpoint.pt"
    if not path.exists():
        raise ReportError(f"argument --checkpoint: no such file: {path}")
    if not path.is_file():
        raise ReportError(f"argument --checkpoint: {path} is a directory without a checkpoint.pt")
    return path


def load_checkpoint(path) -> dict:
    """The checkpoint train.py writes, checked: a dict with 'model' (a state_dict) and 'args'."""
    path = find_checkpoint(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # unpickling, zip or format errors of every kind
        # (the unpickler's own message suggests weights_only=False, which this tool never does)
        lines = str(error).strip().splitlines()
        reason = "" if isinstance(error, pickle.UnpicklingError) or not lines else f": {lines[0][:200]}"
        raise ReportError(f"argument --checkpoint: {path} is not a torch checkpoint that loads with "
                          f"weights_only=True ({type(error).__name__}{reason})") from None
    expected = ("expected the checkpoint.pt train.py writes: a dict with 'model' (a state_dict), "
                "'optimizer', 'epoch', 'metrics' and 'args'")
    if not isinstance(state, dict):
        raise ReportError(f"argument --checkpoint: {path} is not one of our checkpoints; {expected}; "
                          f"found a {type(state).__name__}")
    if "model" not in state or "args" not in state:
        if state and all(isinstance(v, torch.Tensor) for v in state.values()):
            raise ReportError(f"argument --checkpoint: {path} holds a bare state_dict (like model.pt from "
                              f"--save-model), which does not say which model and dataset it is for; pass the "
                              f"checkpoint.pt of the same run")
        raise ReportError(f"argument --checkpoint: {path} is not one of our checkpoints; {expected}; "
                          f"found keys {sorted(map(str, state))[:10]}")
    args = state["args"]
    if not isinstance(args, dict) or not isinstance(state["model"], dict):
        raise ReportError(f"argument --checkpoint: {path} is not one of our checkpoints; {expected}")
    model, dataset = args.get("model", "simple"), args.get("dataset", "mnist")  # older runs: SimpleConvNet, MNIST
    if model not in MODELS or dataset not in datasets.DATASETS or args.get("impl", "torch") not in IMPLS:
        raise ReportError(f"argument --checkpoint: {path} names model {model!r}, dataset {dataset!r}, impl "
                          f"{args.get('impl')!r}; expected one of {tuple(MODELS)}, {tuple(datasets.DATASETS)}, "
                          f"{IMPLS}")
    return {**state, "path": path, "model_name": model, "dataset_name": dataset,
            "impl": args.get("impl", "torch")}


def build_from_checkpoint(checkpoint: dict, impl: str, device) -> nn.Module:
    dataset = datasets.get_dataset(checkpoint["dataset_name"])
    model = build_model(checkpoint["model_name"], impl, dataset.input_shape, dataset.num_classes,
                        batch_norm=bool(checkpoint["args"].get("batch_norm", False)))
    try:
        model.load_state_dict(checkpoint["model"])
    except RuntimeError as error:
        raise ReportError(f"argument --checkpoint: its weights do not fit model {checkpoint['model_name']!r} "
                          f"for {checkpoint['dataset_name']}: {str(error).splitlines()[0]}") from None
    return model.to(device).eval()


# ----------------------------------------------------------------------------- evaluating


@torch.no_grad()
def evaluate(model, images, labels, batch_size: int, device, impl: str) -> tuple[torch.Tensor, float]:
    """(log-probabilities [N, K] on the CPU, summed loss) over the images, with a progress bar."""
    batches = data.Batches(images, labels, batch_size)
    outputs, loss = [], 0.0
    progress = tqdm(batches, total=len(batches), desc=f"evaluating ({impl})", unit="batch", disable=None)
    for batch_images, batch_labels in progress:
        batch_images, batch_labels = batch_images.to(device), batch_labels.to(device)
        log_probs = model(batch_images)
        loss += float(model.loss(log_probs, batch_labels, reduction="sum"))
        outputs.append(log_probs.float().cpu())
    return torch.cat(outputs), loss


# ----------------------------------------------------------------------------- figures


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: no display needed
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: Path) -> dict:
    """Write fig as a PNG atomically; {'file', 'width', 'height'} of the image written."""
    plt = _pyplot()
    buffer = _bytes_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    width, height = png_size(path)
    return {"file": path.name, "width": width, "height": height}


def _display(image: torch.Tensor):
    """[C, H, W] -> something imshow draws: [H, W] for one channel, [H, W, 3] in 0..1 for three."""
    image = image.detach().float().cpu()
    if image.shape[0] == 1:
        return image[0].numpy(), "gray"
    if image.shape[0] == 3:
        low, high = image.min(), image.max()
        return ((image - low) / (high - low + 1e-12)).permute(1, 2, 0).numpy(), None
    return image.mean(0).numpy(), "gray"


def _grid(count_: int, max_columns: int) -> tuple[int, int]:
    columns = min(max_columns, max(1, math.ceil(math.sqrt(count_))))
    return math.ceil(count_ / columns), columns


def _rounded(tensor: torch.Tensor, decimals: int = 6):
    return tensor.detach().double().cpu().round(decimals=decimals).tolist()


def plot_confusion(cm: torch.Tensor, classes, path: Path) -> dict:
    plt = _pyplot()
    n = len(classes)
    size = 0.6 * n + 2.5
    fig, ax = plt.subplots(figsize=(size, size - 0.5))
    ax.imshow(cm.numpy(), cmap="Blues")
    threshold = cm.max().item() / 2
    for t in range(n):
        for p in range(n):
            ax.text(p, t, str(int(cm[t, p])), ha="center", va="center", fontsize=8,
                    color="white" if cm[t, p] > threshold else "black")
    ax.set_xticks(range(n), classes, rotation=45 if max(map(len, classes)) > 2 else 0)
    ax.set_yticks(range(n), classes)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"confusion matrix ({int(cm.sum())} test images, accuracy {100 * accuracy(cm):.2f}%)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def first_conv(model) -> tuple[str, nn.Conv2d]:
    for _, module_name, _ in model.layers():
        module = getattr(model, module_name) if module_name else None
        if isinstance(module, nn.Conv2d):
            return module_name, module
    raise ReportError(f"{type(model).__name__} has no convolution layer")


def plot_filters(weight: torch.Tensor, title: str, path: Path) -> dict:
    """One panel per output channel; three input channels as RGB, else their mean, grey, each scaled alone."""
    plt = _pyplot()
    rows, columns = _grid(len(weight), 10)
    fig, axes = plt.subplots(rows, columns, figsize=(1.1 * columns, 1.1 * rows + 0.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(weight):
            image, cmap = _display(weight[k])
            ax.imshow(image, cmap=cmap, interpolation="nearest")
            ax.set_title(str(k), fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_feature_maps(maps: torch.Tensor, title: str, path: Path) -> dict:
    """maps [C, H, W]: every channel on one figure, each panel scaled alone."""
    plt = _pyplot()
    rows, columns = _grid(len(maps), 10)
    fig, axes = plt.subplots(rows, columns, figsize=(1.2 * columns, 1.2 * rows + 0.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(maps):
            ax.imshow(maps[k].float().cpu().numpy(), cmap="gray", interpolation="nearest")
            ax.set_title(str(k), fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_image(image: torch.Tensor, title: str, path: Path) -> dict:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(2.5, 2.7))
    shown, cmap = _display(image)
    ax.imshow(shown, cmap=cmap, interpolation="nearest")
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_misclassified(images, shown: list, classes, total: int, path: Path) -> dict:
    plt = _pyplot()
    rows, columns = _grid(max(1, len(shown)), 8)
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns, 1.8 * rows + 0.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(shown):
            item = shown[k]
            image, cmap = _display(images[item["index"]])
            ax.imshow(image, cmap=cmap, interpolation="nearest")
            ax.set_title(f"#{item['index']}: true {classes[item['true']]}\npred {classes[item['predicted']]} "
                         f"(p={item['probability']:.2f})", fontsize=7)
    if not shown:
        axes[0, 0].text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    fig.suptitle(f"misclassified: {len(shown)} of {total}, most confident first", fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def read_metrics(path: Path) -> list[dict]:
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}, line {number}: not JSON ({error})") from None
    return records


def plot_curves(records: list[dict], path: Path) -> dict:
    plt = _pyplot()
    epochs = [r.get("epoch", k + 1) for k, r in enumerate(records)]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("train_loss", "train loss"), ("test_loss", "test loss")):
        if any(key in r for r in records):
            loss_ax.plot(epochs, [r.get(key, float("nan")) for r in records], marker="o", label=label)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss (nll)")
    loss_ax.legend()
    loss_ax.set_title("loss per epoch", fontsize=10)
    acc_ax.plot(epochs, [100 * r.get("test_accuracy", float("nan")) for r in records], marker="o", color="C2")
    acc_ax.set_xlabel("epoch")
    acc_ax.set_ylabel("test accuracy (%)")
    acc_ax.set_title("test accuracy per epoch", fontsize=10)
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.set_xticks(epochs if len(epochs) <= 20 else ax.get_xticks())
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- the page


CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th{background:#f3f3f3}td.diag{background:#dbe9f6;font-weight:bold}img{max-width:100%;border:1px solid #eee}
.note{color:#a60}code{background:#f5f5f5;padding:0 3px}"""


def _table(headers, rows, diagonal=False) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in headers)
    body = []
    for r, row in enumerate(rows):
        cells = []
        for c, cell in enumerate(row):
            tag = "th" if c == 0 else "td"
            css = ' class="diag"' if diagonal and c == r + 1 else ""
            cells.append(f"<{tag}{css}>{html.escape(str(cell))}</{tag}>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _img(figure: dict, alt: str) -> str:
    return (f'<p><img src="{html.escape(figure["file"])}" alt="{html.escape(alt)}" '
            f'width="{figure["width"]}" height="{figure["height"]}"></p>')


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def render_html(report: dict) -> str:
    classes = report["classes"]
    cm = report["confusion_matrix"]["matrix"]
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(report['title'])}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(report['title'])}</h1>"]
    parts.append(_table(["run", ""], [
        ("checkpoint", report["checkpoint"]), ("model", report["model"]), ("dataset", report["dataset"]),
        ("impl", report["impl"]), ("epoch", report["epoch"]), ("test images evaluated", report["evaluated"]),
        ("accuracy", _pct(report["accuracy"])), ("mean test loss", f"{report['loss']:.4f}"),
    ]))
    parts.append("<h2>Confusion matrix</h2><p>Rows: true class; columns: predicted class.</p>")
    parts.append(_img(report["confusion_matrix"], "confusion matrix"))
    parts.append(_table(["true \\ predicted", *classes, "total"],
                        [(classes[t], *row, sum(row)) for t, row in enumerate(cm)], diagonal=True))
    parts.append("<h2>Precision and recall per class</h2>")
    parts.append(_table(["class", "precision", "recall", "images of the class", "images predicted as it"],
                        [(c["class"], _pct(c["precision"]), _pct(c["recall"]), c["support"], c["predicted"])
                         for c in report["per_class"]]))
    filters = report["filters"]
    parts.append(f"<h2>Filters of the first convolution layer</h2><p><code>{html.escape(filters['layer'])}"
                 f"</code>, weights {filters['shape']}; each filter scaled on its own.</p>")
    parts.append(_img(filters, "filters"))
    features = report["feature_maps"]
    parts.append(f"<h2>Feature maps of test image #{features['image_index']}</h2>"
                 f"<p>True class {html.escape(features['true'])}, predicted {html.escape(features['predicted'])} "
                 f"(p={features['probability']:.3f}). Every channel, each scaled on its own.</p>")
    parts.append(_img(features["input"], "input image"))
    for name, layer in features["layers"].items():
        parts.append(f"<h3>{html.escape(name)} ({html.escape(layer['op'])}): "
                     f"{' x '.join(map(str, layer['shape']))}</h3>")
        parts.append(_img(layer, f"feature maps of {name}"))
    mis = report["misclassified"]
    parts.append(f"<h2>Misclassified test images</h2><p>{mis['count']} of {report['evaluated']} misclassified; "
                 f"{len(mis['shown'])} shown, most confident first.</p>")
    parts.append(_img(mis, "misclassified images"))
    if mis["shown"]:
        parts.append(_table(["test index", "true", "predicted", "probability"],
                            [(m["index"], classes[m["true"]], classes[m["predicted"]], f"{m['probability']:.3f}")
                             for m in mis["shown"]]))
    curves = report["training_curves"]
    parts.append("<h2>Training curves</h2>")
    if "file" in curves:
        parts.append(_img(curves, "training curves"))
        keys = [k for k in ("epoch", "train_loss", "test_loss", "test_accuracy", "seconds") if
                any(k in r for r in curves["epochs"])]
        parts.append(_table(keys, [tuple(_cell(r.get(k)) for k in keys) for r in curves["epochs"]]))
    else:
        parts.append(f"<p class='note'>{html.escape(curves['note'])}</p>")
    layers = report["layers"]
    parts.append("<h2>Layers</h2><p>Parameters and multiply-adds per image, counted from the shapes "
                 "(<code>python -m simple_conv_net.summary</code>).</p>")
    parts.append(_table(["layer", "op", "output", "params", "of which bias", "MACs/image"],
                        [(r["name"], r["op"], "x".join(map(str, r["output_shape"])), f"{r['params']:,}",
                          f"{r['bias_params']:,}", f"{r['macs_per_image']:,}") for r in layers["rows"]]
                        + [("total", "", "", f"{layers['total']['params']:,}",
                            f"{layers['total']['bias_params']:,}", f"{layers['total']['macs_per_image']:,}")]))
    parts.append("<p>Every number on this page is in <a href='report.json'>report.json</a>.</p></body></html>\n")
    return "\n".join(parts)


def _cell(value):
    return f"{value:.4f}" if isinstance(value, float) else ("" if value is None else value)


# ----------------------------------------------------------------------------- the report


def make_report(checkpoint_path, impl=None, out=None, data_dir=None, image_index: int = 0,
                test_samples: int | None = None, batch_size: int = 1000, device="cpu",
                max_misclassified: int = MAX_MISCLASSIFIED) -> dict:
    """Evaluate the checkpoint and write every file; returns report.json's content."""
    checkpoint = load_checkpoint(checkpoint_path)
    path = checkpoint["path"]
    impl = impl or checkpoint["impl"]
    out = Path(out) if out is not None else path.parent / "report"
    dataset = datasets.get_dataset(checkpoint["dataset_name"])
    classes = list(dataset.classes)
    if data_dir is None:  # the run's own --data-dir, when it still exists from here
        saved = checkpoint["args"].get("data_dir")
        data_dir = saved if saved and Path(saved).is_dir() else None
    images, labels = datasets.load(checkpoint["dataset_name"], "test", data_dir)
    if test_samples is not None and not 1 <= test_samples <= len(labels):
        raise ReportError(f"argument --test-samples: expected 1..{len(labels)} (the test set's size), "
                          f"got {test_samples}")
    if not 0 <= image_index < len(labels):
        raise ReportError(f"argument --image-index: expected 0..{len(labels) - 1}, got {image_index}")
    n = test_samples or len(labels)
    model = build_from_checkpoint(checkpoint, impl, device)

    log_probs, loss_sum = evaluate(model, images[:n], labels[:n], batch_size, device, impl)
    probabilities, predictions = log_probs.exp().max(dim=1)
    target = labels[:n]
    cm = confusion_matrix(predictions, target, len(classes))
    precision, recall = precision_recall(cm)
    figures = {}

    figures["confusion_matrix"] = plot_confusion(cm, classes, out / "confusion_matrix.png")

    conv_name, conv_module = first_conv(model)
    weight = conv_module.weight.detach().cpu()
    figures["filters"] = plot_filters(weight, f"{conv_name}: {len(weight)} filters "
                                              f"{weight.shape[2]}x{weight.shape[3]} over {weight.shape[1]} channel(s)",
                                      out / "filters.png")

    image = images[image_index]
    with torch.no_grad():
        single_log_probs, intermediates = model(image.unsqueeze(0).to(device), return_intermediates=True)
    image_probability, image_prediction = single_log_probs[0].exp().max(dim=0)
    figures["input"] = plot_image(image, f"test image #{image_index}, class {classes[int(labels[image_index])]}",
                                  out / "input.png")
    layer_rows = count(model, dataset.input_shape)
    feature_layers = {}
    for row in layer_rows:
        if row.op in ("conv2d", "max_pool2d") and len(row.output_shape) == 3:
            maps = intermediates[row.name][0].detach().cpu()
            figure = plot_feature_maps(maps, f"{row.name} ({row.op}) of test image #{image_index}: "
                                             f"{len(maps)} maps {maps.shape[1]}x{maps.shape[2]}",
                                       out / f"features_{row.name}.png")
            feature_layers[row.name] = {**figure, "op": row.op, "shape": list(maps.shape), "values": _rounded(maps)}
            figures[f"features_{row.name}"] = figure

    wrong = (predictions != target).nonzero().flatten()
    order = sorted(wrong.tolist(), key=lambda i: (-float(probabilities[i]), i))
    shown = [{"index": i, "true": int(target[i]), "predicted": int(predictions[i]),
              "probability": round(float(probabilities[i]), 6)} for i in order[:max_misclassified]]
    figures["misclassified"] = plot_misclassified(images, shown, classes, len(wrong), out / "misclassified.png")

    metrics_path = path.parent / METRICS
    if metrics_path.is_file():
        try:
            records = read_metrics(metrics_path)
        except ValueError as error:
            curves = {"note": f"training curves skipped: {error}"}
        else:
            if records:
                curves = {**plot_curves(records, out / "training_curves.png"), "source": str(metrics_path),
                          "epochs": records}
                figures["training_curves"] = {k: curves[k] for k in ("file", "width", "height")}
            else:
                curves = {"note": f"training curves skipped: {metrics_path} is empty"}
    else:
        curves = {"note": f"training curves skipped: no {METRICS} beside the checkpoint ({metrics_path})"}

    report = {
        "title": f"{type(model).__name__} on {checkpoint['dataset_name']} ({impl})",
        "checkpoint": str(path), "model": checkpoint["model_name"], "dataset": checkpoint["dataset_name"],
        "impl": impl, "checkpoint_impl": checkpoint["impl"], "epoch": checkpoint.get("epoch"),
        "device": str(device), "evaluated": n, "accuracy": accuracy(cm), "loss": loss_sum / n,
        "classes": classes,
        "confusion_matrix": {**figures["confusion_matrix"], "rows": "true class", "columns": "predicted class",
                             "matrix": cm.tolist()},
        "per_class": [{"class": c, "precision": p, "recall": r, "support": int(cm[k].sum()),
                       "predicted": int(cm[:, k].sum())} for k, (c, p, r) in enumerate(zip(classes, precision, recall))],
        "precision": precision, "recall": recall,
        "filters": {**figures["filters"], "layer": conv_name, "shape": list(weight.shape), "values": _rounded(weight)},
        "feature_maps": {"image_index": image_index, "true": classes[int(labels[image_index])],
                         "predicted": classes[int(image_prediction)], "probability": round(float(image_probability), 6),
                         "input": {**figures["input"], "shape": list(image.shape)}, "layers": feature_layers},
        "misclassified": {**figures["misclassified"], "count": len(wrong), "shown": shown},
        "training_curves": curves,
        "layers": {"rows": [r.as_dict() for r in layer_rows], "total": vars(totals(layer_rows))},
        "figures": figures,
    }
    atomic_write_text(out / "report.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(out / "index.html", render_html(report))
    report["out"] = str(out)
    return report


def format_confusion(cm, classes) -> str:
    width = max(5, *(len(c) for c in classes), len(str(int(cm.max()))) + 1)
    lines = ["true \\ pred".ljust(width + 2) + "".join(c.rjust(width) for c in classes)]
    for t, row in enumerate(cm.tolist()):
        lines.append(classes[t].ljust(width + 2) + "".join(str(v).rjust(width) for v in row))
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simple_conv_net.report",
                                     description="Evaluate a checkpoint and write a report: confusion matrix, "
                                                 "precision and recall, filters, feature maps, misclassified "
                                                 "images, training curves (PNG, JSON and index.html)")
    parser.add_argument("--checkpoint", required=True, metavar="PATH",
                        help="checkpoint.pt written by train.py (or its run directory)")
    parser.add_argument("--impl", choices=IMPLS, default=None, help="ops to evaluate with (default: the checkpoint's)")
    parser.add_argument("--out", default=None, metavar="DIR", help="output directory (default: <checkpoint dir>/report)")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="directory with the dataset's files")
    parser.add_argument("--image-index", type=int, default=0, metavar="I",
                        help="test image whose feature maps are drawn (default: 0, the first)")
    parser.add_argument("--test-samples", type=int, default=None, metavar="N",
                        help="evaluate the first N test images only (default: all)")
    parser.add_argument("--batch-size", type=int, default=1000, metavar="N", help="evaluation batch (default: 1000)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda when available, else cpu)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error(f"argument --batch-size: expected a positive integer, got {args.batch_size}")
    try:
        report = make_report(args.checkpoint, args.impl, args.out, args.data_dir, args.image_index,
                             args.test_samples, args.batch_size, args.device)
    except (ReportError, FileNotFoundError, ValueError) as error:  # bad arguments, missing or corrupt data
        print(f"error: {error}", file=sys.stderr)
        return 2
    cm = torch.tensor(report["confusion_matrix"]["matrix"])
    print(f"{report['title']}: {report['evaluated']} test images, accuracy {100 * report['accuracy']:.2f}%, "
          f"mean loss {report['loss']:.4f}")
    print("\nconfusion matrix (rows: true class, columns: predicted class)")
    print(format_confusion(cm, report["classes"]))
    print("\nclass  precision  recall")
    for c in report["per_class"]:
        print(f"{c['class']:>5}  {_pct(c['precision']):>9}  {_pct(c['recall']):>7}")
    note = report["training_curves"].get("note")
    if note:
        print(f"\nnote: {note}")
    print(f"\nwrote {report['out']}/index.html, report.json and {len(report['figures'])} figures: "
          + ", ".join(f["file"] for f in report["figures"].values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

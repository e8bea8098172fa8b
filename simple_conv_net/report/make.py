"""The report as a whole: evaluate, draw, write report.json and index.html; the command line."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .. import datasets
from ..backends import IMPLS
from ..cli import positive_int
from ..io import atomic_write_text
from ..summary import count, totals
from .checkpoint import ReportError, build_from_checkpoint, evaluate, load_checkpoint
from .figures import (first_conv, plot_confusion, plot_curves, plot_feature_maps, plot_filters, plot_image,
                      plot_misclassified, rounded)
from .metrics import accuracy, confusion_matrix, precision_recall
from .page import percent, render_html

MAX_MISCLASSIFIED = 24


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
    images, labels = datasets.load(checkpoint["dataset_name"], "test", data_dir,
                                   check_md5=not checkpoint["args"].get("no_md5_check", False))
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
            feature_layers[row.name] = {**figure, "op": row.op, "shape": list(maps.shape), "values": rounded(maps)}
            figures[f"features_{row.name}"] = figure

    wrong = (predictions != target).nonzero().flatten()
    order = sorted(wrong.tolist(), key=lambda i: (-float(probabilities[i]), i))
    shown = [{"index": i, "true": int(target[i]), "predicted": int(predictions[i]),
              "probability": round(float(probabilities[i]), 6)} for i in order[:max_misclassified]]
    figures["misclassified"] = plot_misclassified(images, shown, classes, len(wrong), out / "misclassified.png")

    records = checkpoint.get("metrics")  # the epochs its model has seen (metrics.jsonl is a copy)
    if records:
        curves = {**plot_curves(records, out / "training_curves.png"), "source": f"{path} (its metrics)",
                  "epochs": records}
        figures["training_curves"] = {k: curves[k] for k in ("file", "width", "height")}
    else:
        curves = {"note": f"training curves skipped: {path} holds no per-epoch metrics"}

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
        "filters": {**figures["filters"], "layer": conv_name, "shape": list(weight.shape), "values": rounded(weight)},
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
    parser.add_argument("--batch-size", type=positive_int, default=1000, metavar="N",
                        help="evaluation batch (default: 1000)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda when available, else cpu)")
    args = parser.parse_args(argv)
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
        print(f"{c['class']:>5}  {percent(c['precision']):>9}  {percent(c['recall']):>7}")
    note = report["training_curves"].get("note")
    if note:
        print(f"\nnote: {note}")
    print(f"\nwrote {report['out']}/index.html, report.json and {len(report['figures'])} figures: "
          + ", ".join(f["file"] for f in report["figures"].values()))
    return 0

"""The report's figures, drawn with matplotlib's Agg backend (no display needed)."""

from __future__ import annotations

import io as _bytes_io
import math
import struct
from pathlib import Path

import torch
from torch import nn

from ..io import atomic_write_bytes
from .checkpoint import ReportError
from .metrics import accuracy

DPI = 100


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


def rounded(tensor: torch.Tensor, decimals: int = 6):
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


def _panels(panels: list, title: str, path: Path, inches: float) -> dict:
    """(image, cmap) pairs, one panel each, titled by its index, on a grid of up to 10 columns."""
    plt = _pyplot()
    rows, columns = _grid(len(panels), 10)
    fig, axes = plt.subplots(rows, columns, figsize=(inches * columns, inches * rows + 0.5), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(panels):
            image, cmap = panels[k]
            ax.imshow(image, cmap=cmap, interpolation="nearest")
            ax.set_title(str(k), fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


def plot_filters(weight: torch.Tensor, title: str, path: Path) -> dict:
    """One panel per output channel; three input channels as RGB, else their mean, grey, each scaled alone."""
    return _panels([_display(w) for w in weight], title, path, inches=1.1)


def plot_feature_maps(maps: torch.Tensor, title: str, path: Path) -> dict:
    """maps [C, H, W]: every channel on one figure, each panel scaled alone."""
    return _panels([(m.float().cpu().numpy(), "gray") for m in maps], title, path, inches=1.2)


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


def png_size(path) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk."""
    header = Path(path).read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n" or header[12:16] != b"IHDR":
        raise ValueError(f"{path} is not a PNG file")
    return struct.unpack(">II", header[16:24])

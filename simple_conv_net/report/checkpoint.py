"""Load one of train.py's checkpoints, rebuild its model, and evaluate it on the test set."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from .. import data, datasets, run_dir
from ..io import CHECKPOINT
from ..model import build_model


class ReportError(Exception):
    """A bad argument or input, with a message naming it."""


def find_checkpoint(path) -> Path:
    path = Path(path)
    if path.is_dir() and (path / CHECKPOINT).is_file():
        return path / CHECKPOINT
    if not path.exists():
        raise ReportError(f"argument --checkpoint: no such file: {path}")
    if not path.is_file():
        raise ReportError(f"argument --checkpoint: {path} is a directory without a checkpoint.pt")
    return path


def load_checkpoint(path) -> dict:
    """The checkpoint train.py writes (a file, or a run directory holding checkpoint.pt), loaded and
    checked by the loader train.py --resume uses, with the names it was built from."""
    path = find_checkpoint(path)
    try:
        state = run_dir.load_checkpoint(path)
    except run_dir.CheckpointError as error:
        raise ReportError(f"argument --checkpoint: {error}") from None
    args = state["args"]
    return {**state, "path": path, "model_name": args.get("model", "simple"),  # older runs: SimpleConvNet on MNIST
            "dataset_name": args.get("dataset", "mnist"), "impl": args.get("impl", "torch")}


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

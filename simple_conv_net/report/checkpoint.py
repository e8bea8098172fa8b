"""Load one of train.py's checkpoints, rebuild its model, and evaluate it on the test set."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from .. import data, datasets
from ..backends import IMPLS
from ..io import CHECKPOINT
from ..model import MODELS, build_model


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

"""Slow end-to-end runs (``pytest -m slow``): a full MNIST epoch with every impl from the same seed."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("train", ROOT / "train.py")
train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train)


def one_epoch_accuracy(impl, out):
    assert train.main(["--impl", impl, "--epochs", "1", "--out", str(out)]) == 0
    return json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["test_accuracy"]


@pytest.mark.slow
def test_one_full_epoch_matches_native(tmp_path):
    """After one epoch on all 60,000 images the test accuracy of each impl is native's within 0.2 points.

    With the homework's defaults one epoch reaches about 95.9% (measured here: torch 95.88%,
    vector 95.90%, scalar 95.87%); the floor of 95% only says the run learned, the agreement
    between the impls is the check.
    """
    accuracies = {impl: one_epoch_accuracy(impl, tmp_path / impl) for impl in ("torch", "vector", "scalar")}
    print(accuracies)
    assert accuracies["torch"] >= 0.95
    for impl in ("vector", "scalar"):
        assert abs(accuracies[impl] - accuracies["torch"]) <= 0.002, accuracies

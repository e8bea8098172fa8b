"""Pure functions of the evaluation: the confusion matrix, per-class precision and recall, accuracy."""

from __future__ import annotations

import torch


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

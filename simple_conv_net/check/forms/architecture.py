"""A model's declared architecture, and how a candidate's traced forward differs from it (the model form).

A declaration is the sequence of layers the handout asks for, each with its kind and sizes; seed
001's LeNet (COM S 573 homework 5, question 4a) is :data:`LENET5`. What a candidate's forward ran
is a sequence of *events* (:mod:`.model_trace`): each module of torch.nn it called, and each torch
function its own code called, with the kind of layer it is. The two sequences are aligned by kind
and width (difflib), so that a missing layer, a wrong width, a layer of another kind (average for
max pooling) and an extra one (a softmax after the logits) are each named where they are.

Pure data and functions, no torch: the parent judges with them.
"""

from __future__ import annotations

import difflib
from typing import NamedTuple


class Declared(NamedTuple):
    """One declared layer: its name (the reference model's intermediate), kind, description and parameters."""

    name: str
    kind: str                 # conv, relu, maxpool, avgpool, flatten, reorder, linear, softmax
    text: str                 # as a module of torch.nn would print it: Conv2d(3, 6, 5), Linear(400, 120)
    width: int | None = None  # output channels or units (conv, linear)
    parameters: int = 0


def conv(name: str, inputs: int, outputs: int, k: int) -> Declared:
    return Declared(name, "conv", f"Conv2d({inputs}, {outputs}, {k})", outputs, outputs * (inputs * k * k + 1))


def linear(name: str, inputs: int, outputs: int) -> Declared:
    return Declared(name, "linear", f"Linear({inputs}, {outputs})", outputs, outputs * (inputs + 1))


def lenet5(n_classes: int = 10) -> tuple[Declared, ...]:
    """Seed 001's LeNet on [N, 3, 32, 32]: the names are the intermediates of simple_conv_net.model.LeNet5."""
    return (
        conv("conv1", 3, 6, 5), Declared("relu1", "relu", "ReLU"), Declared("pool1", "maxpool", "MaxPool2d(2, 2)"),
        conv("conv2", 6, 16, 5), Declared("relu2", "relu", "ReLU"), Declared("pool2", "maxpool", "MaxPool2d(2, 2)"),
        Declared("reshape", "flatten", "flatten, C order of (channel, row, column)"),
        linear("fc1", 400, 120), Declared("relu3", "relu", "ReLU"),
        linear("fc2", 120, 84), Declared("relu4", "relu", "ReLU"),
        linear("fc3", 84, n_classes),
    )


def total_parameters(declaration) -> int:
    return sum(layer.parameters for layer in declaration)


def _key(kind: str, width) -> str:
    return f"{kind}/{width}" if kind in ("conv", "linear") else kind


def layer_differences(declaration, events: list[dict]) -> tuple[dict, str | None]:
    """({name: what differs} for every layer the traced ``events`` (dicts with kind, name, text, width; other kinds
    ignored) run otherwise than declared, and the first declared layer that differs, or None). A name is the
    candidate's where it has a layer there (its module's name), else the declared one."""
    layers = [e for e in events if e["kind"] in ("conv", "relu", "maxpool", "avgpool", "flatten", "reorder", "linear",
                                                 "softmax")]
    ran = [_key(e["kind"], e.get("width")) for e in layers]
    wanted = [_key(d.kind, d.width) for d in declaration]
    found, first = {}, None

    def note(name, text, declared_at):
        nonlocal first
        found.setdefault(name, text)
        if first is None or declared_at < first:
            first = declared_at

    matcher = difflib.SequenceMatcher(a=wanted, b=ran, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for d, (i, e) in zip(declaration[i1:i2], enumerate(layers[j1:j2])):
                if e["text"] != d.text and d.kind in ("conv", "linear"):
                    note(e["name"], f"{e['text']}, declared {d.text}", i1 + i)
            continue
        pairs = min(i2 - i1, j2 - j1) if tag == "replace" else 0
        for k in range(pairs):
            d, e = declaration[i1 + k], layers[j1 + k]
            note(e["name"], f"{e['text']}, declared {d.text}", i1 + k)
        for k in range(i1 + pairs, i2):
            d = declaration[k]
            if d.kind == "relu" and k > i1 + pairs and declaration[k - 1].kind in ("conv", "linear"):
                found[declaration[k - 1].name] += ", with its ReLU"
                continue
            after = f" (after {declaration[k - 1].name})" if k else ""
            note(d.name, f"missing{after}" if d.kind != "relu" else f"missing: no ReLU{after}", k)
        for k in range(j1 + pairs, j2):
            e = layers[k]
            where = f" after {declaration[i1 - 1].name}" if i1 else " before the first layer"
            if e["kind"] == "reorder":
                where = f" before {declaration[i1].name}" if i1 < len(declaration) else where
            note(e["name"], f"extra: {e['text']}{where}", min(i1, len(declaration) - 1))
    return found, None if first is None else declaration[first].name


__all__ = ["Declared", "conv", "layer_differences", "lenet5", "linear", "total_parameters"]

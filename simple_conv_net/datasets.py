"""The datasets train.py and the tools accept, by name, with the input shape a model is built for."""

from __future__ import annotations

import importlib
from typing import NamedTuple


class Dataset(NamedTuple):
    module: str            # the module whose load(split, data_dir) reads it
    input_shape: tuple     # (C, H, W) of one image
    num_classes: int
    classes: tuple         # class names, index order


DATASETS = {
    "mnist": Dataset("simple_conv_net.data", (1, 28, 28), 10, tuple(str(d) for d in range(10))),
    "cifar10": Dataset("simple_conv_net.cifar10", (3, 32, 32), 10,
                       ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")),
}


def get_dataset(name: str) -> Dataset:
    if name not in DATASETS:
        raise ValueError(f"argument 'dataset' expected one of {tuple(DATASETS)}, got {name!r}")
    return DATASETS[name]


def load(name: str, split: str, data_dir=None, check_md5: bool = True):
    """(images float32 [N, C, H, W] normalised, labels int64 [N], N >= 1) of split 'train' or 'test'.
    ``check_md5``: check files with the dataset's standard names against the published data's MD5s
    (MNIST; False for data of your own under those names)."""
    module = importlib.import_module(get_dataset(name).module)
    return module.load(split, data_dir, check_md5)

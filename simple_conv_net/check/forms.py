"""What a candidate module can hold: the ops, native PyTorch's twin of each, and the two forms of names.

An *op* is the maths (conv2d, max_pool2d, ...), with named tensor inputs in a fixed order and
options (stride, padding, ...). A *form* is how a module spells the ops:

handout
    the names and argument lists of the homework's ``simple_conv_net_func.py`` (seed 000):
    ``conv2d_vector(x_in, conv_weight, conv_bias, device)`` and so on, at the homework's fixed
    options (pool 2x2 stride 2, reshape per sample).
functional
    the ops under torch.nn.functional's names and signatures (``conv2d(input, weight, bias,
    stride, padding)``), the form of ``vector_ops`` and ``scalar_ops``.

This module is imported by the checker's child processes too, so it needs torch alone.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F


def _diff_mse(x, y):
    """The homework's measure, as a 0-d tensor: mean((x - y)^2) over all entries."""
    return ((x.reshape(-1) - y.reshape(-1)) ** 2).mean()


def _conv_weight2rows(conv_weight):
    return conv_weight.reshape(conv_weight.shape[0], -1)


def _im2col(input, kernel_size):
    """[N, C_in, H, W] -> [N, C_in*K*K, H_out*W_out], stride 1, no padding: column (m, l) is window (m, l)."""
    return F.unfold(input, kernel_size)


class Op(NamedTuple):
    inputs: tuple[str, ...]          # tensor inputs, in the native function's argument order
    differentiable: tuple[str, ...]  # those a gradient is checked for
    native: Callable                 # native(*inputs, **options)


OPS = {
    "conv2d": Op(("input", "weight", "bias"), ("input", "weight", "bias"), F.conv2d),
    "max_pool2d": Op(("input",), ("input",), F.max_pool2d),
    "relu": Op(("input",), ("input",), F.relu),
    "flatten": Op(("input",), ("input",), torch.flatten),
    "linear": Op(("input", "weight", "bias"), ("input", "weight", "bias"), F.linear),
    "log_softmax": Op(("input",), ("input",), F.log_softmax),
    "nll_loss": Op(("input", "target"), ("input",), F.nll_loss),
    "batch_norm": Op(("input", "running_mean", "running_var", "weight", "bias"), ("input", "weight", "bias"),
                     F.batch_norm),
    "diff_mse": Op(("x", "y"), (), _diff_mse),
    "im2col": Op(("input",), (), _im2col),
    "conv_weight2rows": Op(("weight",), (), _conv_weight2rows),
}


def native_call(op: str, inputs: dict, options: dict):
    """Native PyTorch's result of ``op`` on ``inputs`` (name -> tensor; a missing one is None)."""
    spec = OPS[op]
    return spec.native(*(inputs.get(name) for name in spec.inputs), **options)


class Function(NamedTuple):
    """One function a candidate module may define."""

    name: str
    op: str
    parameters: tuple[str, ...]   # the form's own argument list (handout) or the leading ones (functional)
    scalar: bool = False          # Python loops expected: small batches, forward only
    graded: bool = True           # False: reported, never part of a rubric's default items
    homework: bool = False        # the handout's: its rules apply (im2col by hand, see scratch)


HANDOUT = {f.name: f for f in (
    Function("diff_mse", "diff_mse", ("x", "y"), homework=True),
    *(Function(f"{base}_{kind}", op, parameters, scalar=kind == "scalar", homework=True)
      for kind in ("scalar", "vector")
      for base, op, parameters in (
          ("conv2d", "conv2d", ("x_in", "conv_weight", "conv_bias", "device")),
          ("pool2d", "max_pool2d", ("a", "device")),
          ("relu", "relu", ("a", "device")),
          ("reshape", "flatten", ("a", "device")),
          ("fc_layer", "linear", ("a", "weight", "bias", "device")))),
    Function("im2col", "im2col", ("X", "kernel_size", "device"), graded=False, homework=True),
    Function("conv_weight2rows", "conv_weight2rows", ("conv_weight",), graded=False, homework=True),
)}

FUNCTIONAL = {f.name: f for f in (
    Function("conv2d", "conv2d", ("input", "weight", "bias", "stride", "padding")),
    Function("max_pool2d", "max_pool2d", ("input", "kernel_size", "stride", "padding")),
    Function("relu", "relu", ("input",)),
    Function("linear", "linear", ("input", "weight", "bias")),
    Function("flatten", "flatten", ("input", "start_dim", "end_dim")),
    Function("log_softmax", "log_softmax", ("input", "dim")),
    Function("nll_loss", "nll_loss", ("input", "target", "reduction")),
    Function("batch_norm", "batch_norm", ("input", "running_mean", "running_var", "weight", "bias", "training",
                                          "momentum", "eps")),
)}

FORMS = {"handout": HANDOUT, "functional": FUNCTIONAL}
ALL_NAMES = tuple(dict.fromkeys([*HANDOUT, *FUNCTIONAL]))
# Names that tell the forms apart (im2col is also a helper of vector_ops, so it does not count).
_SIGNS = {"handout": [name for name, f in HANDOUT.items() if f.graded or name == "diff_mse"],
          "functional": list(FUNCTIONAL)}


def detect_form(defined) -> str | None:
    """The form whose names ``defined`` holds most of (the handout's on a tie), or None if it holds none."""
    defined = set(defined)
    counts = {form: len(defined.intersection(names)) for form, names in _SIGNS.items()}
    if not any(counts.values()):
        return None
    return "handout" if counts["handout"] >= counts["functional"] else "functional"


def names_in_source(path: Path) -> set[str] | None:
    """Top-level names a Python file defines, read without running it (None if it does not parse)."""
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (SyntaxError, ValueError, OSError):
        return None
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    return names

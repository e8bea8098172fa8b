"""From scratch: a function must not call the native op it is meant to compute.

The homework asks for its equations coded "from scratch", and a function that hands its work to
PyTorch's own op gives native's values: every value check passes. So the child records what two
calls of each function run, forward and backward (:func:`runner.watching`): the Python-level torch
functions and the ATen operators. A function fails its ``from-scratch`` check when the native
counterpart of its own op is among them:

conv2d       a native convolution: torch.nn.functional.conv2d (torch.conv2d, nn.Conv2d, conv1d,
             conv3d, conv_transpose), aten::convolution and the kernels under it, and their backward
max_pool2d   a native pooling (max, adaptive, average): F.max_pool2d, aten::max_pool2d_with_indices, ...
relu         F.relu, torch.relu, Tensor.relu, aten::relu, aten::threshold (and its backward);
             clamp(min=0), torch.maximum and a mask are the equation: they pass
linear       torch.nn.functional.linear (nn.Linear): a matrix product plus the bias (@, matmul,
             addmm) is the vector form itself, and passes
log_softmax, nll_loss, batch_norm (the functional form): their native ops and cross_entropy
im2col       (the handout's helper) PyTorch's im2col: torch.nn.functional.unfold, aten::im2col
flatten, diff_mse, conv_weight2rows: nothing to forbid (a reshape is the equation)

A convolution of the handout's form also gets an ``im2col`` check: its columns built by hand, not
by PyTorch's im2col. The handout's task 2a asks for the "im2col trick", the windows unrolled into
columns and the convolution as one matrix product; building the columns is half of that, so the
homework rubric's gates halve what a conv2d_vector built on F.unfold and its own product earns,
where a native convolution earns nothing (see rubric). That is the homework's rule: a conv2d of
the functional form (a custom op of anyone's) built on F.unfold gets no such check. Tensor.unfold
(a strided view of one axis's windows) and as_strided are indexing, not an im2col: they pass.

Only PyTorch's own names count (torch.*, Tensor.*, and the aten, prims, mkldnn and quantized
operator namespaces): a submission's own torch.library op named conv2d is its own code.
"""

from __future__ import annotations

import re
from typing import Callable, NamedTuple

NATIVE_NAMESPACES = ("aten", "prims", "mkldnn", "quantized", "_quantized")


class Rule(NamedTuple):
    check: str                       # the check's name (its first word is its kind)
    what: str                        # the native op, in words
    forbidden: Callable              # (a recorded name, its bare name) -> whether it is that native op


def _bare(name: str) -> str | None:
    """'conv2d' for torch.conv2d or aten::conv2d; None for a name outside PyTorch's own."""
    if "::" in name:
        namespace, _, bare = name.partition("::")
        return bare.split(".")[0] if namespace in NATIVE_NAMESPACES else None
    return name.rsplit(".", 1)[-1] if name.startswith(("torch.", "Tensor.")) else None


def _matching(pattern: str) -> Callable:
    compiled = re.compile(pattern)
    return lambda name, bare: bool(compiled.search(bare))


def _im2col(name: str, bare: str) -> bool:
    return name in ("torch.nn.functional.unfold", "torch.nn.functional.fold") or bare in ("im2col", "col2im")


IM2COL = Rule("im2col by hand", "im2col (torch.nn.functional.unfold)", _im2col)
RULES = {
    "conv2d": (Rule("from-scratch", "convolution", _matching(r"(^|_)conv(olution|_?\d|_transpose|_tbc|_depthwise)")),
               IM2COL),
    "max_pool2d": (Rule("from-scratch", "pooling", _matching(r"pool")),),
    "relu": (Rule("from-scratch", "ReLU", _matching(r"relu|threshold")),),
    "linear": (Rule("from-scratch", "linear layer", _matching(r"^(_?linear|bilinear|mkldnn_linear)$")),),
    "log_softmax": (Rule("from-scratch", "softmax", _matching(r"softmax|cross_entropy")),),
    "nll_loss": (Rule("from-scratch", "NLL loss", _matching(r"nll|cross_entropy")),),
    "batch_norm": (Rule("from-scratch", "batch norm", _matching(r"batch_norm")),),
    "im2col": (Rule("from-scratch", IM2COL.what, _im2col),),
}


def rules(function) -> tuple:
    """The rules of one function (forms.Function): its op's, the im2col rule only for the handout's own."""
    return tuple(rule for rule in RULES.get(function.op, ()) if rule is not IM2COL or function.homework)


def recorded(seen) -> list[dict]:
    """What the watched calls ran: their records' {"functions": [...], "operators": [...]}."""
    return [s.record["ops"] for s in seen if s.record is not None and s.record.get("ops")]


def native_names(rule: Rule, seen) -> list[str] | None:
    """The names of ``rule``'s native op that the watched calls ran (functions first), or None when no watched
    call was recorded."""
    ops = recorded(seen)
    if not ops:
        return None
    names = [name for kind in ("functions", "operators") for o in ops for name in o[kind]]
    return list(dict.fromkeys(name for name in names if (bare := _bare(name)) and rule.forbidden(name, bare)))


def finding(rule: Rule, names: list[str]) -> str:
    """The diagnosis of a function that ran its native op."""
    if rule is IM2COL:
        return (f"builds its columns with PyTorch's own im2col ({', '.join(names)}): the handout's im2col trick asks "
                f"for the windows unrolled by hand (the homework rubric counts that as half of task 2a)")
    return (f"uses PyTorch's own {rule.what} ({', '.join(names)}) instead of computing it: the homework asks for the "
            f"equations coded from scratch")

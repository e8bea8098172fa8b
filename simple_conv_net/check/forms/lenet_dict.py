"""The lenet-dict form: seed 003's LeNet handout in numpy, data as dicts of columns (CMU 10-601 hw7 and its port).

Two variants of one API, told apart in the child by their argument lists (:func:`.lenet_calls.variant_in`):

10-601      one file, ``cnn_lenet.py`` (Python 2 in the handout): ``pooling_layer_forward(input, layer)``,
            ``relu_forward(input, layer)``, ``inner_product_forward(input, layer, param)`` and their
            backward passes ``*_backward(output, input, layer[, param])``, ``get_lr(step, epsilon, gamma,
            power)``, ``sgd_momentum(w_rate, b_rate, mu, decay, params, param_winc, param_grad)``; the
            convolution is given. Columns in C order of (h, w, c); layers and params keyed from 1; b [num].
port        SFU CMPT 412 project 1's Python 3 port, a folder of ``conv_layer.py``, ``pooling_layer.py``,
            ``relu.py``, ``inner_product.py``, ``utils.py`` (TARGET is the folder, :func:`locate`):
            ``relu_forward(input_data)``, ``sgd_momentum(rate, mu, weight_decay, params, param_winc,
            param_grad)``, ``get_lr(iter, ...)``; the student writes the convolution's forward, the pooling
            and convolution backward passes are given. Columns in Fortran order of (h, w, c); lists
            indexed from 0; b [1, num].

A layer's data is {height, width, channel, batch_size, data} with data [h w c, batch]; a backward
gets its own forward's output dict with ``diff`` and returns (param_grad {w, b}, input_od) or
input_od. The calls and the child's conversions are :mod:`.lenet_calls`, native PyTorch's answers
:mod:`.lenet_truth`, the judging and diagnoses :mod:`.lenet_judge`. Rubric ``cmu-hw7`` is the
10-601 handout's Q1-Q7; the port's default gives a point to each function its students write.
"""

from __future__ import annotations

from pathlib import Path

import torch.nn.functional as F

from ..targets import Target
from .base import Form, Function
from .ops import Op

PORT_FILES = ("conv_layer.py", "pooling_layer.py", "relu.py", "inner_product.py", "utils.py")
PORT_MODULE = "_lenet_port"          # the module the child imports: the port's five modules' names in one
# The functions each variant's students write (the rest are given: checked, not graded by default).
VARIANT_NOTES = {"cmu10601": "variant: CMU 10-601's cnn_lenet.py",
                 "port": "variant: the Python 3 port (SFU CMPT 412)"}
STUDENTS = {"cmu10601": ("pooling_layer_forward", "relu_forward", "inner_product_forward", "pooling_layer_backward",
                         "relu_backward", "inner_product_backward", "sgd_momentum"),
            "port": ("conv_layer_forward", "pooling_layer_forward", "relu_forward", "inner_product_forward",
                     "relu_backward", "inner_product_backward")}


def _layer_native(kind: str):
    """Native's forward of a layer from a call's inputs and options (for the schedule's estimates; the judging uses
    lenet_truth)."""
    def native(x, weight=None, bias=None, diff=None, **options):
        if kind == "conv":
            return F.conv2d(x, weight, bias, stride=options["stride"], padding=options["pad"])
        if kind == "pooling":
            return F.max_pool2d(x, options["k"], options["stride"])
        if kind == "relu":
            return F.relu(x)
        return F.linear(x.flatten(1), weight, bias)
    return native


OPS = {f"lenet.{kind}": Op(("x", "weight", "bias", "diff"), (), _layer_native(kind))
       for kind in ("conv", "pooling", "relu", "inner_product")}


def _judged_elsewhere(*inputs, **options):
    """sgd_momentum's and get_lr's oracle is lenet_truth's, on the handout's containers (no tensor op)."""
    raise NotImplementedError("judged by lenet_truth")


OPS["lenet.sgd_momentum"] = Op(("params",), (), _judged_elsewhere)
OPS["lenet.get_lr"] = Op((), (), _judged_elsewhere)


def _pair(kind: str, forward_parameters: tuple, backward_parameters: tuple) -> tuple[Function, Function]:
    forward, backward = f"{kind}_forward", f"{kind}_backward"
    return (Function(forward, f"lenet.{kind.removesuffix('_layer')}", forward_parameters, kind="forward",
                     pair=backward),
            Function(backward, f"lenet.{kind.removesuffix('_layer')}", backward_parameters, kind="backward",
                     pair=forward, grads=("input_od",)))


FUNCTIONS = {f.name: f for f in (
    *_pair("pooling_layer", ("input", "layer"), ("output", "input", "layer")),
    *_pair("relu", ("input", "layer"), ("output", "input", "layer")),
    *_pair("inner_product", ("input", "layer", "param"), ("output", "input", "layer", "param")),
    Function("sgd_momentum", "lenet.sgd_momentum",
             ("w_rate", "b_rate", "mu", "decay", "params", "param_winc", "param_grad")),
    *_pair("conv_layer", ("input", "layer", "param"), ("output", "input", "layer", "param")),
    Function("get_lr", "lenet.get_lr", ("step", "epsilon", "gamma", "power"), graded=False),
)}
SIGNS = ("pooling_layer_forward", "pooling_layer_backward", "relu_forward", "relu_backward", "inner_product_forward",
         "inner_product_backward", "sgd_momentum", "conv_layer_forward", "conv_layer_backward")


def plan(function: Function, settings, material, found: dict | None, style) -> tuple[list, str | None]:
    """The same calls for both variants: the child reads the variant off the module (lenet_calls.variant_in)."""
    from .. import plans
    from . import lenet_calls
    return plans.finish(lenet_calls.plan_calls(function, settings)), None


def run_call(module, name: str, request: dict) -> dict:
    from . import lenet_calls
    return lenet_calls.run_call(module, name, request)


def analyse(function: Function, calls: list, result, settings):
    from . import lenet_judge
    return lenet_judge.analyse(function, calls, result, settings)


def variant_of_report(report: dict) -> str:
    """The variant its functions' calls found (see lenet_judge: each entry's notes name it), 10-601 by default."""
    notes = (note for entry in report["functions"].values() for note in entry.get("notes", []))
    return "port" if any(note.startswith(VARIANT_NOTES["port"]) for note in notes) else "cmu10601"


def default_rubric(report: dict):
    """cmu-hw7 for a 10-601 file; for the port, a point for each function its students write."""
    from ..rubric import functions_rubric, load
    if variant_of_report(report) == "cmu10601":
        return load("cmu-hw7")
    return functions_rubric([name for name in STUDENTS["port"] if name in report["functions"]], training=False)


GATHER = f"""\"\"\"Written by the checker into its private copy of the port's folder: the names the port's modules define, in
one module, each module imported by its own name as the port's modules import each other.\"\"\"
import importlib as _importlib
import os as _os

for _name in {tuple(n.removesuffix(".py") for n in PORT_FILES)!r}:
    if _os.path.isfile(_os.path.join(_os.path.dirname(__file__), _name + ".py")):
        _module = _importlib.import_module(_name)
        for _key, _value in vars(_module).items():
            if not _key.startswith("_") and (getattr(_value, "__module__", None) == _name or _key not in globals()):
                globals()[_key] = _value
"""


class PortTarget(Target):
    """The port's folder, copied whole, with :data:`GATHER` written into the copy as the module the child imports."""

    def request(self) -> dict:
        return dict(super().request(), file=f"{PORT_MODULE}.py")

    def copy_into(self, work: Path) -> None:
        super().copy_into(work)
        (work / f"{PORT_MODULE}.py").write_text(GATHER)


def locate(path: Path):
    """The port's folder (pooling_layer.py, relu.py and inner_product.py at least), else None."""
    if not path.is_dir() or not all((path / name).is_file() for name in ("pooling_layer.py", "relu.py",
                                                                         "inner_product.py")):
        return None
    folder = path.resolve()
    return PortTarget(str(path), "directory", PORT_MODULE, file=folder / "relu.py", folder=folder)


FORM = Form("lenet-dict", "seed 003's LeNet in numpy dicts: CMU 10-601 hw7's cnn_lenet.py or the Python 3 port's "
                          "folder (pooling_layer_forward(input, layer), sgd_momentum...)",
            FUNCTIONS, plan, default_rubric, signs=SIGNS, run_call=run_call, analyse=analyse,
            locate=locate, optional=True, ops=OPS)

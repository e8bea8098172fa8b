"""The functional form: the ops under torch.nn.functional's names and signatures (``conv2d(input, weight,
bias, stride, padding)``), the form of ``vector_ops`` and ``scalar_ops`` and of any custom-op module.

Each op is checked on a table of shapes and options (:func:`plans.functional_calls`); a function the
module does not define is missing, not failing. Graded with a point per function defined (and one for
training, task 3, which builds SimpleConvNet from its conv2d, max_pool2d, flatten, linear and relu).
"""

from __future__ import annotations

from .base import Form, Function

FUNCTIONS = {f.name: f for f in (
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


def plan(function: Function, settings, material, found: dict | None, style) -> tuple[list, str | None]:
    from .. import plans     # plans imports this package: imported when first needed
    return plans.finish(plans.functional_calls(function, settings, material())), None


def default_rubric(report: dict):
    """A point per function the module defines (every check but speed; the from-scratch gate), one for training."""
    from ..rubric import functions_rubric
    return functions_rubric([name for name, entry in report["functions"].items()
                             if entry["status"] != "missing" and name in FUNCTIONS],
                            training="training" in report["functions"])


FORM = Form("functional", "torch.nn.functional's names and signatures: conv2d(input, weight, bias, stride, padding)...",
            FUNCTIONS, plan, default_rubric, trains=True, optional=True)

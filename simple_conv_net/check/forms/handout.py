"""The handout form: the names and argument lists of the homework's ``simple_conv_net_func.py`` (seed 000).

``conv2d_vector(x_in, conv_weight, conv_bias, device)`` and so on, at the homework's fixed options
(pool 2x2 stride 2, reshape per sample); a device argument a student may have dropped (see
:func:`call_style`); diff_mse, and the helpers im2col and conv_weight2rows, reported but not graded
by default. Graded with the built-in ``homework`` rubric; task 3 trains SimpleConvNet from them.
"""

from __future__ import annotations

from .base import Form, Function

FUNCTIONS = {f.name: f for f in (
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


def _positional_range(parameters: list) -> tuple[int, float]:
    """(required, most) positional arguments a signature takes."""
    positional = [p for p in parameters if p[1] in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")]
    most = float("inf") if any(p[1] == "VAR_POSITIONAL" for p in parameters) else len(positional)
    return sum(not has_default for _, _, has_default in positional), most


def call_style(function: Function, found: dict) -> tuple[bool | None, str | None]:
    """(whether to pass the handout's device argument, or None if the signature cannot take the handout's
    arguments at all; a note on a signature that differs from the handout's)."""
    parameters = found.get("parameters")
    if parameters is None:
        return True, None
    wanted = len(function.parameters)
    low, high = _positional_range(parameters)
    differs = f"signature {function.name}{found['text']} differs from the handout's " \
              f"{function.name}({', '.join(function.parameters)})"
    if low <= wanted <= high:
        return True, differs if [p[0] for p in parameters] != list(function.parameters) else None
    if "device" in function.parameters and low <= wanted - 1 <= high:
        return False, f"{differs}: called without the device argument"
    return None, f"{differs}: it cannot be called with the handout's {wanted} arguments"


def plan(function: Function, settings, material, found: dict | None, style) -> tuple[list, str | None]:
    from .. import plans     # plans imports this package: imported when first needed
    if function.op == "diff_mse":
        calls, why = plans.diff_mse_calls(settings), None
    elif function.op == "conv_weight2rows":
        calls, why = plans.conv_weight2rows_calls(settings, material()), None
    elif function.op == "im2col":
        calls, why = plans.im2col_calls(settings, (found or {}).get("parameters"))
    else:
        calls, why = plans.handout_calls(function, settings, material(), style is not False), None
    return plans.finish(calls), why


def default_rubric(report: dict):
    from ..rubric import load
    return load("homework")


FORM = Form(
    "handout", "the homework's simple_conv_net_func.py (seed 000): conv2d_vector(x_in, conv_weight, conv_bias, device)...",
    FUNCTIONS, plan, default_rubric,
    # im2col is also a helper of vector_ops, so it does not tell the forms apart.
    signs=tuple(name for name, f in FUNCTIONS.items() if f.graded or name == "diff_mse"),
    call_style=call_style, trains=True)

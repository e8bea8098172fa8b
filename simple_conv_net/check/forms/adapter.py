"""Instructors' own forms: a course's layer functions mapped onto the checker's ops in a page of code.

A form file (``--form path/to/form.py``) is a Python module that builds a :class:`~.base.Form` named
``FORM``, exactly as the built-in forms do; this module builds one from a list of mappings:

    FORM = adapter.form("my-course", "what it reads", [Pair(...), Pair(...), Single(...)], rubric=None)

A :class:`Pair` maps a forward that returns (output, cache) and a backward that takes
(upstream gradient, cache) onto an op of :mod:`.ops` (conv2d, max_pool2d, linear, relu, ...): the
checker draws the op's inputs in PyTorch's layout (``input``, ``weight``, ``bias`` as
torch.nn.functional names them, float64), and the mapping's functions convert, in both directions:

arguments(inputs, options)   the forward's arguments from the inputs (a dict of arrays) and the op's
                             options (stride, padding, kernel_size...), as a tuple
output(returned)             the output, in PyTorch's layout, from what the forward returned
cache(returned)              what the backward gets as its cache (default: returned[1])
grad_output(dout)            the backward's upstream gradient from dout in PyTorch's layout
gradients(returned)          {input name: gradient in PyTorch's layout} from what the backward returned

A :class:`Single` is a function without a backward (arguments and output alone). The arrays are
numpy (``arrays="numpy"``, the default) or torch tensors (``arrays="torch"``), writable copies. The
conversions run in the child process with the candidate's results; one that raises is the
candidate's failure to return what the form says (its type is reported), never the checker's.

Each call is one of the op's :class:`Case`\\ s (default :data:`CASES`): ``assignment`` cases decide,
``general`` ones (non-square, strides, paddings, batch 1) are reported and fail a function only with
--strict (see :mod:`.verdict`). A wrong output is tested against the likely mistakes of
:mod:`..hypotheses` (the kernel flipped or transposed, the bias twice...); a wrong gradient against
the sign flipped, a factor, a transposed matrix, db not summed over the batch, a pool's gradient
routed without the stride, and the backward of a forward with one of those mistakes.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from .base import Form, Function
from .ops import OPS


class Case(NamedTuple):
    """One call's inputs: their shapes in PyTorch's layout, and the op's options."""

    case: str                     # "assignment" (decides) or "general" (reported; fails only with --strict)
    shapes: dict                  # input name -> shape
    options: dict = {}


CASES = {
    "conv2d": (Case("assignment", {"input": (2, 3, 6, 6), "weight": (4, 3, 3, 3), "bias": (4,)},
                    {"stride": 1, "padding": 1}),
               Case("general", {"input": (1, 2, 7, 5), "weight": (3, 2, 3, 2), "bias": (3,)},
                    {"stride": 2, "padding": 0}),
               Case("general", {"input": (1, 2, 5, 6), "weight": (2, 2, 2, 3), "bias": (2,)},
                    {"stride": 1, "padding": 2})),
    "max_pool2d": (Case("assignment", {"input": (2, 3, 6, 6)}, {"kernel_size": 2, "stride": 2}),
                   Case("general", {"input": (1, 2, 7, 9)}, {"kernel_size": 3, "stride": 2}),
                   Case("general", {"input": (1, 2, 5, 6)}, {"kernel_size": 2, "stride": 1})),
    "linear": (Case("assignment", {"input": (2, 12), "weight": (5, 12), "bias": (5,)}),
               Case("general", {"input": (1, 7), "weight": (3, 7), "bias": (3,)})),
    "relu": (Case("assignment", {"input": (2, 3, 6, 6)}), Case("general", {"input": (1, 7)})),
}


def _first(returned):
    return returned[0]


def _second(returned):
    return returned[1]


def _same(value):
    return value


class Pair(NamedTuple):
    """A forward returning (output, cache) and its backward taking (upstream gradient, cache); see the module doc."""

    forward: str
    backward: str
    op: str
    arguments: Callable
    gradients: Callable
    output: Callable = _first
    grad_output: Callable = _same
    cache: Callable = _second
    cases: tuple = ()             # default: CASES[op]
    graded: bool = True


class Single(NamedTuple):
    """A function without a backward: one call, one output."""

    name: str
    op: str
    arguments: Callable
    output: Callable = _same
    cases: tuple = ()
    graded: bool = True


def form(name: str, about: str, mappings: list, rubric: dict | None = None, arrays: str = "numpy") -> Form:
    """The Form of an instructor's mappings (Pair, Single); ``rubric`` a rubric document (see rubric.parse) or None
    for a point per graded function."""
    if arrays not in ("numpy", "torch"):
        raise ValueError(f"form {name}: arrays: expected 'numpy' or 'torch', got {arrays!r}")
    functions, by_name = {}, {}
    for mapping in mappings:
        if mapping.op not in OPS:
            raise ValueError(f"form {name}: {mapping}: op: expected one of {', '.join(OPS)}, got {mapping.op!r}")
        if isinstance(mapping, Pair):
            grads = OPS[mapping.op].differentiable
            entries = (Function(mapping.forward, mapping.op, (), graded=mapping.graded, kind="forward",
                                pair=mapping.backward),
                       Function(mapping.backward, mapping.op, (), graded=mapping.graded, kind="backward",
                                pair=mapping.forward, grads=grads))
        else:
            entries = (Function(mapping.name, mapping.op, (), graded=mapping.graded),)
        for entry in entries:
            functions[entry.name], by_name[entry.name] = entry, mapping

    def default_rubric(report):
        from .. import rubric as rubrics
        if rubric is not None:
            return rubrics.parse(rubric, f"form {name}'s rubric")
        return rubrics.functions_rubric([n for n, f in functions.items() if f.graded and n in report["functions"]],
                                        training=False)

    def plan(function, settings, material, found, style):
        from .. import plans
        return plans.finish(plan_calls(function, by_name[function.name], settings.seed)), None

    def run_call(module, function_name, request):
        return run_mapped(module, functions[function_name], by_name[function_name], request, arrays)

    def analyse(function, calls, result, settings):
        from . import adapter_judge
        return adapter_judge.analyse(function, calls, result, settings)

    return Form(name, about, functions, plan, default_rubric, run_call=run_call, analyse=analyse, optional=True)


# ----------------------------------------------------------------------------- the calls


def plan_calls(function: Function, mapping, seed: int) -> list:
    """A plans.Call per case: inputs drawn in PyTorch's layout (float64; weights scaled by their fan-in, ReLU's
    inputs kept off its kink) and, for a backward, the upstream gradient."""
    from ..plans import Call
    g = torch.Generator().manual_seed(seed)
    calls = []
    for index, case in enumerate(mapping.cases or CASES[mapping.op]):
        inputs = {}
        for input_name in OPS[mapping.op].inputs:
            shape = case.shapes.get(input_name)
            if shape is None:
                inputs[input_name] = None
                continue
            x = torch.randn(*shape, generator=g, dtype=torch.float64)
            if input_name == "weight":
                x = x / _size(shape[1:]) ** 0.5
            if mapping.op == "relu":
                x = torch.where(x.abs() < 1e-3, x + 0.01, x)
            inputs[input_name] = x
        options = dict(case.options)
        meta = {k: None if v is None else v.to("meta") for k, v in inputs.items()}
        out_shape = OPS[mapping.op].native(*(meta[k] for k in OPS[mapping.op].inputs), **options).shape
        grad_output = torch.randn(*out_shape, generator=g, dtype=torch.float64) if function.kind == "backward" else None
        label = f"{case.case} {index}: {' '.join(f'{k} {list(v.shape)}' for k, v in inputs.items() if v is not None)}"
        if options:
            label += " " + ", ".join(f"{k}={v}" for k, v in options.items())
        calls.append(Call(label, case.case, mapping.op, inputs, options, grad_output=grad_output,
                          stage="graded" if case.case != "general" else "sizes",
                          shapes="graded" if case.case != "general" else "small"))
    return calls


def _size(shape) -> int:
    size = 1
    for dim in shape:
        size *= dim
    return size


# ----------------------------------------------------------------------------- in the child


def _to_form(tensor, arrays: str):
    if tensor is None:
        return None
    return tensor.numpy().copy() if arrays == "numpy" else tensor.clone()


def _read(value):
    """(a float64 tensor of an array or number the conversion gave, or None; facts about it)."""
    import numpy as np

    from ..runner import describe
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        value = np.asarray(value, dtype=np.float64)
    tensor, info = describe(value)
    return (None if tensor is None else tensor.to(torch.float64)), info


def _converted(convert, returned, what: str, record: dict):
    """``convert(returned)``, or None with the record saying what came back that the form could not read."""
    from ..runner import describe
    try:
        return convert(returned)
    except BaseException as error:  # noqa: BLE001 - what the candidate returned is not what the form says
        record["unreadable"] = (f"{what}: the form could not read what it returned ({describe(returned)[1]['type']}: "
                                f"{type(error).__name__}: {error})")
        return None


def _changed(before: dict, after: dict) -> list[str]:
    return [name for name, value in before.items()
            if value is not None and not torch.equal(torch.as_tensor(value), torch.as_tensor(after[name]))]


def run_mapped(module, function: Function, mapping, request: dict, arrays: str) -> dict:
    """One call of a mapped function (a forward, a backward after its own forward, or a single) as a record:
    {"output"} or {"grads": {name: tensor or None}}, with "error", "blocked", "unreadable", "changed"."""
    import time

    from ..runner import describe_error
    started = time.perf_counter()
    record = {"label": request["label"], "error": None, "native_seconds": []}
    inputs = {name: _to_form(value, arrays) for name, value in request["inputs"].items()}
    before = {name: None if value is None else _to_form(torch.as_tensor(value), "torch")
              for name, value in inputs.items()}
    forward = getattr(module, mapping.forward if function.kind == "backward" else function.name)
    try:
        returned = forward(*mapping.arguments(inputs, dict(request["options"])))
    except BaseException as error:  # noqa: BLE001 - candidate code
        if function.kind == "backward":
            record["blocked"] = f"{mapping.forward} raised {type(error).__name__}: {str(error)[:200]}"
        else:
            record["error"] = describe_error(error, "forward")
    else:
        if function.kind != "backward":
            record["output"], record["info"] = _read(_converted(mapping.output, returned, function.name, record))
        else:
            cache = _converted(mapping.cache, returned, mapping.forward, record)
            if "unreadable" in record:
                record["blocked"] = record.pop("unreadable")
            else:
                record.update(_backward(module, function, mapping, request, cache, arrays))
    record["changed"] = _changed(before, inputs)
    record["seconds"] = [time.perf_counter() - started]
    return record


def _backward(module, function: Function, mapping, request: dict, cache, arrays: str) -> dict:
    from ..runner import describe_error
    found = {}
    try:
        dout = mapping.grad_output(_to_form(request["grad_output"], arrays))
        returned = getattr(module, function.name)(dout, cache)
    except BaseException as error:  # noqa: BLE001 - candidate code
        return {"error": describe_error(error, "backward")}
    grads = _converted(mapping.gradients, returned, function.name, found)
    if grads is not None and not isinstance(grads, dict):
        found["unreadable"] = f"{function.name}: the form's gradients() gave a {type(grads).__name__}, not a dict"
        grads = None
    found["grads"] = {name: _read((grads or {}).get(name))[0] for name in function.grads}
    found["info"] = {name: _read((grads or {}).get(name))[1] for name in function.grads}
    return found

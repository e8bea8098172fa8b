"""Call a candidate function as a plan says and record what happened, as plain data.

This is the part of the checker that touches candidate code. The child process runs it
(:mod:`simple_conv_net.check.child`); the tests run it in-process on their own fixtures. It
judges nothing: it records each call's output, the arguments as the call left them, the
gradients, exceptions and timings, for the checker's parent to judge against native PyTorch.

A request (one call of the plan, see :meth:`plans.Call.request`) is a dict::

    label, op, options       the call's name; the op and options native PyTorch runs it with
    inputs                   {name: tensor}: fresh copies are made for every call
    args, kwargs             the candidate's arguments: {"ref": name} stands for inputs[name]
    grad                     names of the inputs that require grad; if any, the output is
                             back-propagated with grad_output
    device                   where the inputs are put ("cpu", or "cuda" for the device check)
    repeat, timed            calls to time; whether to time native PyTorch alongside
    watch                    whether to record the torch functions and ATen operators the call runs

A record holds only tensors, strings, numbers, lists and dicts (so the parent can read it with
``torch.load(weights_only=True)``): whatever else the candidate returned is described (its type
and a truncated repr), never passed on. A tensor output of a dtype other than float32 or float64
is passed on as float64 values (dequantized, or converted: bool, integers, float16, float8...),
its own dtype kept in the record, so the checker compares its values and fails only its dtype;
a complex or sparse one is described, not compared.

Memory a candidate never writes is made visible: while an untimed call runs, new tensors from
torch.empty and its kin (and every op's fresh output) are filled with NaN (integers with their
largest value), PyTorch's ``fill_uninitialized_memory`` under deterministic algorithms in warn-only
mode, so an output entry the code never assigns is NaN every time, never whatever the memory held.
Correct code never reads such memory, so nothing else changes; timed calls run without it.

The recorders (``watch``) see what a call runs, forward and backward: the Python-level torch
functions (a TorchFunctionMode: torch.nn.functional.conv2d, Tensor.relu, ...) and every ATen
operator (a TorchDispatchMode: aten::convolution, aten::im2col, ...), for the from-scratch check.
They make a call of many small ops about three times slower, so a plan watches two calls of each
function (:func:`plans.watch`), never a timed one.
"""

from __future__ import annotations

import contextlib
import inspect
import time
import traceback
import warnings

import torch
import torch.utils.deterministic
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from .forms import native_call

REPR_LIMIT = 300
MESSAGE_LIMIT = 2000
TRACEBACK_LIMIT = 3000


def _text(value, limit: int) -> str:
    """str() of a candidate object, truncated; its own __str__ may fail."""
    try:
        text = str(value)
    except BaseException as error:  # noqa: BLE001 - candidate code
        text = f"<unprintable {type(value).__name__}: {type(error).__name__}>"
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def describe_error(error: BaseException, phase: str) -> dict:
    """An exception as data: its type, message, the tail of its traceback, and where it happened."""
    frames = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    message = _text(error, MESSAGE_LIMIT)
    if isinstance(error, SystemExit):
        message = f"the code called sys.exit({error.code!r})"
    return {"type": type(error).__name__, "message": message, "traceback": frames[-TRACEBACK_LIMIT:],
            "phase": phase}


def type_name(value) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _plain(tensor: torch.Tensor) -> torch.Tensor:
    """A detached CPU copy as a plain torch.Tensor (no subclass, so it loads with weights_only)."""
    return tensor.detach().to("cpu", copy=True).as_subclass(torch.Tensor)


COMPARED = (torch.float32, torch.float64)   # dtypes whose values are passed on as they are


def _values(tensor: torch.Tensor) -> tuple[torch.Tensor | None, str | None]:
    """(a plain tensor the checker can compare, or None; how its values were obtained, or why there are none)."""
    if tensor.layout != torch.strided or tensor.device.type == "meta":
        return None, f"a {str(tensor.layout).removeprefix('torch.')} tensor on {tensor.device}: not compared"
    if tensor.dtype in COMPARED:
        return _plain(tensor), None
    if tensor.is_complex():
        return None, f"{tensor.dtype} values cannot be compared with real ones"
    source = tensor.detach().dequantize() if tensor.is_quantized else tensor
    try:
        return _plain(source).to(torch.float64), f"{tensor.dtype} values compared as float64"
    except BaseException as error:  # noqa: BLE001 - a dtype torch cannot convert
        return None, f"{tensor.dtype} values cannot be converted to float64 ({type(error).__name__})"


def describe(value) -> tuple[torch.Tensor | None, dict]:
    """(a plain tensor holding the value, or None; facts about it) for whatever a candidate returned."""
    info = {"type": type_name(value)}
    if isinstance(value, (int, float)) or type_name(value).startswith("numpy."):   # diff_mse's float, numpy arrays
        try:
            value = torch.as_tensor(value)
        except BaseException:  # noqa: BLE001 - an object numpy made that torch cannot take
            return None, dict(info, repr=_text(value, REPR_LIMIT))
    if not isinstance(value, torch.Tensor):
        return None, dict(info, repr=_text(value, REPR_LIMIT))
    info.update(dtype=str(value.dtype), device=str(value.device), shape=list(value.shape),
                requires_grad=bool(value.requires_grad), is_leaf=bool(value.is_leaf),
                grad_fn=None if value.grad_fn is None else type(value.grad_fn).__name__)
    tensor, how = _values(value)
    if how:
        info["values"] = how
    return tensor, info if tensor is not None else dict(info, repr=_text(value, REPR_LIMIT))


def _fresh(request: dict) -> dict:
    """New copies of the inputs on the request's device, those named in ``grad`` as leaves that require grad."""
    return {name: None if t is None else t.to(request["device"], copy=True).requires_grad_(name in request["grad"])
            for name, t in request["inputs"].items()}


def _resolve(arg, tensors: dict):
    if isinstance(arg, dict) and "ref" in arg:
        return tensors[arg["ref"]]
    return arg


def _call(fn, request: dict, tensors: dict):
    args = [_resolve(arg, tensors) for arg in request["args"]]
    kwargs = {key: _resolve(arg, tensors) for key, arg in request["kwargs"].items()}
    return fn(*args, **kwargs)


def _backward(output, grad_output: torch.Tensor) -> dict:
    """Back-propagate ``grad_output`` through a candidate's output; what happened, as data."""
    if not isinstance(output, torch.Tensor) or not output.requires_grad:
        return {"ran": False, "reason": "the output does not require grad"}
    if tuple(output.shape) != tuple(grad_output.shape):
        return {"ran": False, "reason": f"output shape {list(output.shape)} is not the expected "
                                        f"{list(grad_output.shape)}"}
    try:
        torch.autograd.backward(output, grad_output.to(output.device, output.dtype))
    except BaseException as error:  # noqa: BLE001 - candidate code
        return {"ran": False, "error": describe_error(error, "backward")}
    return {"ran": True}


# ----------------------------------------------------------------------------- what a call runs


def _function_name(func) -> str:
    """A torch function's public name: torch.conv2d, torch.nn.functional.max_pool2d, Tensor.relu, ..."""
    name = getattr(func, "__name__", None) or type(func).__name__
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", "") or ""
    if module is None or qualname.startswith(("TensorBase.", "Tensor.")):
        return f"Tensor.{name}"
    if qualname.startswith("_VariableFunctionsClass."):
        return f"torch.{name}"
    return f"{module}.{name}"


class _Functions(TorchFunctionMode):
    def __init__(self, names: set) -> None:
        super().__init__()
        self.names = names

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.add(_function_name(func))
        return func(*args, **(kwargs or {}))


class _Operators(TorchDispatchMode):
    def __init__(self, names: set) -> None:
        super().__init__()
        self.names = names

    @classmethod
    def _should_skip_dynamo(cls) -> bool:
        """False: do not wrap __torch_dispatch__ in torch._disable_dynamo, whose first call imports torch._dynamo
        (seconds, in every child, inside the first watched call's time). Nothing here is compiled."""
        return False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func._schema.name)          # with its namespace: 'aten::convolution'
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def watching(ops: dict | None):
    """Record into ``ops`` ({"functions": set, "operators": set}) what runs in the block; nothing if None."""
    if ops is None:
        yield
        return
    with _Functions(ops["functions"]), _Operators(ops["operators"]):
        yield


# torch.use_deterministic_algorithms also sets inductor's flag, and importing inductor takes seconds: the switch itself.
_deterministic = getattr(torch._C, "_set_deterministic_algorithms", None) or torch.use_deterministic_algorithms


@contextlib.contextmanager
def unwritten_as_nan(on: bool = True):
    """New tensors are filled with NaN (integers with their largest value) while the block runs (see the module
    doc); nothing changes if not ``on``."""
    if not on:
        yield
        return
    previous = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
                torch.utils.deterministic.fill_uninitialized_memory)
    _deterministic(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*deterministic", category=UserWarning)
            yield
    finally:
        _deterministic(previous[0], warn_only=previous[1])
        torch.utils.deterministic.fill_uninitialized_memory = previous[2]


def _timed_native(request: dict) -> float:
    tensors = _fresh(request)
    start = time.perf_counter()
    output = native_call(request["op"], tensors, request["options"])
    if request["grad"]:
        torch.autograd.backward(output, request["grad_output"].to(output.device))
    return time.perf_counter() - start


def run_call(fn, request: dict) -> dict:
    """Run one request on ``fn`` (see the module doc); the record of what happened."""
    record = {"label": request["label"], "seconds": [], "native_seconds": [], "error": None}
    ops = {"functions": set(), "operators": set()} if request.get("watch") else None
    for repeat in range(request["repeat"]):
        tensors = _fresh(request)
        start = time.perf_counter()
        try:
            with watching(ops if repeat == 0 else None), unwritten_as_nan(not request["timed"]):
                output = _call(fn, request, tensors)
                backward = _backward(output, request["grad_output"]) if request["grad"] else None
        except BaseException as error:  # noqa: BLE001 - candidate code: anything, SystemExit included
            record["error"] = describe_error(error, "forward")
            break
        record["seconds"].append(time.perf_counter() - start)
        if repeat == 0:
            record["output"], record["output_info"] = describe(output)
            record["args_after"] = {name: None if t is None else _plain(t) for name, t in tensors.items()}
            record["backward"] = backward
            record["grads"] = {name: None if tensors[name].grad is None else _plain(tensors[name].grad)
                               for name in request["grad"]}
        if request["timed"]:
            record["native_seconds"].append(_timed_native(request))
    if ops is not None:
        record["ops"] = {kind: sorted(names) for kind, names in ops.items()}
    return record


def signature_of(fn) -> dict:
    """The parameters of a candidate function as data: [[name, kind, has_default], ...] and their text."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return {"text": "(signature unknown)", "parameters": None}
    parameters = [[p.name, p.kind.name, p.default is not inspect.Parameter.empty]
                  for p in signature.parameters.values()]
    return {"text": _text(signature, REPR_LIMIT), "parameters": parameters}


def discover(module, names) -> dict:
    """Which of ``names`` the module defines, whether each is callable, and its signature."""
    found = {}
    for name in names:
        if not hasattr(module, name):
            continue
        value = getattr(module, name)
        found[name] = {"callable": callable(value), "type": type_name(value),
                       **(signature_of(value) if callable(value) else {"text": "", "parameters": None})}
    return found

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

A record holds only tensors, strings, numbers, lists and dicts (so the parent can read it with
``torch.load(weights_only=True)``): whatever else the candidate returned is described (its type
and a truncated repr), never passed on.
"""

from __future__ import annotations

import inspect
import time
import traceback

import torch

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


def describe(value) -> tuple[torch.Tensor | None, dict]:
    """(a plain tensor holding the value, or None; facts about it) for whatever a candidate returned."""
    info = {"type": type_name(value)}
    if isinstance(value, torch.Tensor):
        info.update(dtype=str(value.dtype), device=str(value.device), shape=list(value.shape),
                    requires_grad=bool(value.requires_grad), is_leaf=bool(value.is_leaf),
                    grad_fn=None if value.grad_fn is None else type(value.grad_fn).__name__)
        if value.is_complex() or value.layout != torch.strided or value.device.type == "meta":
            return None, dict(info, repr=_text(value, REPR_LIMIT))
        return _plain(value), info
    if isinstance(value, (int, float)) or type_name(value).startswith("numpy."):   # diff_mse's float, numpy arrays
        try:
            tensor = torch.as_tensor(value)
        except BaseException:  # noqa: BLE001 - an object numpy made that torch cannot take
            tensor = None
        if tensor is not None and not tensor.is_complex():
            info.update(dtype=str(tensor.dtype), shape=list(tensor.shape))
            return tensor.clone(), info
    return None, dict(info, repr=_text(value, REPR_LIMIT))


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
    for repeat in range(request["repeat"]):
        tensors = _fresh(request)
        start = time.perf_counter()
        try:
            output = _call(fn, request, tensors)
        except BaseException as error:  # noqa: BLE001 - candidate code: anything, SystemExit included
            record["error"] = describe_error(error, "forward")
            return record
        backward = _backward(output, request["grad_output"]) if request["grad"] else None
        record["seconds"].append(time.perf_counter() - start)
        if repeat == 0:
            record["output"], record["output_info"] = describe(output)
            record["args_after"] = {name: None if t is None else _plain(t) for name, t in tensors.items()}
            record["backward"] = backward
            record["grads"] = {name: None if tensors[name].grad is None else _plain(tensors[name].grad)
                               for name in request["grad"]}
        if request["timed"]:
            record["native_seconds"].append(_timed_native(request))
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

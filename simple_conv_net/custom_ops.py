"""The kernels as torch.library custom ops: what torch.compile and torch.export see of a kernel.

Each op of ``functions`` is an ``autograd.Function`` over two kernels, forward and backward.
:func:`register` makes each kernel an operator named after it in its impl's namespace
(``scalar_ops::conv2d_forward``, ``scalar_ops::conv2d_backward``, ...) with

- a schema: the kernel contract of ``functions`` in the dispatcher's types, written once below
  for every impl (:data:`CONTRACTS`). The :class:`~simple_conv_net.functions.Window` of a
  sliding-window op becomes its 16 ints, ``SymInt[] geometry`` (SymInt: the batch size may be
  symbolic); the gradients a backward is asked for, ``bool[] needs``; an unneeded gradient, None;
- a fake implementation, also written once: the outputs' shapes and dtypes from the inputs', so
  a compiler knows them without running a kernel (dynamo cannot trace numba, and need not);
- a kernel per device type: the function itself for ``cpu``, and its CUDA twin for ``cuda``
  where the impl has one (``cuda_twin``);
- an autograd registration that marks every output non-differentiable. A kernel runs below
  autograd, inside a Function's forward or backward, and the Function is its derivative; the op
  says so. (The default registration would make the outputs require grad whenever an input does,
  and fail only when a backward pass reached them, with "no autograd formula was registered".)

Every op is functional, as a compiler wants it. Batch norm's forward kernel updates the running
statistics in place: its op runs the kernel on copies of them and returns the copies after its
own outputs, and the caller writes them back (as ATen's functional batch norm does).

The Functions call what :func:`register` returns: for each kernel a function with the kernel's
name and contract that, in eager mode, runs the kernel itself (the dispatcher's Python path
would add about 6 us to every call) and, while torch.compile or torch.export traces, calls the
registered op, so the traced graph holds the op and never the kernel's Python.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import torch

from .functions import Kernels, Window

__all__ = ["CONTRACTS", "Contract", "register"]


class Contract(NamedTuple):
    """How a kernel looks to the dispatcher.

    ``schema``: its arguments and returns (the op's name goes in front). ``fake``: its outputs'
    metadata from its arguments, called as the kernel is (a Window where the schema has ``geometry``).
    ``updates``: the arguments the kernel updates in place when its bool argument ``updates_when``
    is true; the op returns them, updated, after the kernel's outputs (``Tensor?`` each in the
    schema, None when not updated).
    """

    schema: str
    fake: Callable
    updates: tuple[str, ...] = ()
    updates_when: str | None = None


def _empty(like: torch.Tensor, shape, dtype=None) -> torch.Tensor:
    """A new contiguous tensor of ``shape``, on the device of ``like`` and of its dtype unless given."""
    return like.new_empty(tuple(shape), dtype=dtype)


def _same_shape(like, *_):
    return _empty(like, like.shape)


def _gradients(like: torch.Tensor, needs, *shapes) -> tuple:
    """A backward's gradients: one tensor of each shape asked for, None for the others."""
    return tuple(_empty(like, shape) if needed else None for needed, shape in zip(needs, shapes))


def _conv2d_backward(grad_output, input, weight, g: Window, needs):
    return _gradients(grad_output, needs, g.input_shape, g.weight_shape, (g.c_out,))


def _linear_backward(grad_output, input, weight, needs):
    rows, features = grad_output.shape
    width = (weight if weight is not None else input).shape[1]
    return _gradients(grad_output, needs, (rows, width), (features, width), (features,))


def _flatten_forward(input, start_dim, end_dim):
    shape = input.shape
    return _empty(input, (*shape[:start_dim], math.prod(shape[start_dim:end_dim + 1]), *shape[end_dim + 1:]))


def _batch_norm_forward(input, running_mean, running_var, weight, bias, training, momentum, eps):
    return _empty(input, input.shape), _empty(input, input.shape), _empty(input, input.shape[1:2])


def _batch_norm_backward(grad_output, x_hat, inv_std, weight, training, needs):
    channels = grad_output.shape[1:2]
    return _gradients(grad_output, needs, grad_output.shape, channels, channels)


# The contract table of ``functions``, one row per kernel, in the dispatcher's types.
CONTRACTS = {
    "conv2d_forward": Contract(
        "(Tensor input, Tensor weight, Tensor? bias, SymInt[] geometry) -> Tensor",
        lambda input, weight, bias, g: _empty(input, g.output_shape)),
    "conv2d_backward": Contract(
        "(Tensor grad_output, Tensor? input, Tensor? weight, SymInt[] geometry, bool[] needs) "
        "-> (Tensor?, Tensor?, Tensor?)",
        _conv2d_backward),
    "max_pool2d_forward": Contract(
        "(Tensor input, SymInt[] geometry) -> (Tensor, Tensor)",
        lambda input, g: (_empty(input, g.output_shape), _empty(input, g.output_shape, torch.int64))),
    "max_pool2d_backward": Contract(
        "(Tensor grad_output, Tensor argmax, SymInt[] geometry) -> Tensor",
        lambda grad_output, argmax, g: _empty(grad_output, g.input_shape)),
    "relu_forward": Contract("(Tensor input) -> Tensor", _same_shape),
    "relu_backward": Contract("(Tensor grad_output, Tensor output) -> Tensor", _same_shape),
    "linear_forward": Contract(
        "(Tensor input, Tensor weight, Tensor? bias) -> Tensor",
        lambda input, weight, bias: _empty(input, (input.shape[0], weight.shape[0]))),
    "linear_backward": Contract(
        "(Tensor grad_output, Tensor? input, Tensor? weight, bool[] needs) -> (Tensor?, Tensor?, Tensor?)",
        _linear_backward),
    "flatten_forward": Contract("(Tensor input, int start_dim, int end_dim) -> Tensor", _flatten_forward),
    "flatten_backward": Contract(
        "(Tensor grad_output, SymInt[] input_shape) -> Tensor",
        lambda grad_output, input_shape: _empty(grad_output, input_shape)),
    "log_softmax_forward": Contract("(Tensor input) -> Tensor", _same_shape),
    "log_softmax_backward": Contract("(Tensor grad_output, Tensor output) -> Tensor", _same_shape),
    "nll_loss_forward": Contract(
        "(Tensor input, Tensor target, Tensor? weight, int ignore_index, str reduction) -> Tensor",
        lambda input, target, weight, ignore_index, reduction: _empty(input, target.shape if reduction == "none"
                                                                      else ())),
    "nll_loss_backward": Contract(
        "(Tensor grad_output, Tensor target, Tensor? weight, SymInt[] input_shape, int ignore_index, "
        "str reduction) -> Tensor",
        lambda grad_output, target, weight, input_shape, ignore_index, reduction: _empty(grad_output, input_shape)),
    "batch_norm_forward": Contract(
        "(Tensor input, Tensor? running_mean, Tensor? running_var, Tensor? weight, Tensor? bias, "
        "bool training, float momentum, float eps) -> (Tensor, Tensor, Tensor, Tensor?, Tensor?)",
        _batch_norm_forward, updates=("running_mean", "running_var"), updates_when="training"),
    "batch_norm_backward": Contract(
        "(Tensor grad_output, Tensor x_hat, Tensor inv_std, Tensor? weight, bool training, bool[] needs) "
        "-> (Tensor?, Tensor?, Tensor?)",
        _batch_norm_backward),
}


def _as_op(function: Callable, names: list[str], contract: Contract) -> Callable:
    """``function`` (a kernel, its twin or its fake) as the op runs it: with the op's arguments
    (``geometry`` back to a Window), on copies of the arguments it updates, returned after its outputs."""
    window = names.index("geometry") if "geometry" in names else None
    updated = [names.index(argument) for argument in contract.updates]
    when = names.index(contract.updates_when) if updated else None

    @functools.wraps(function)
    def run(*args):
        args = list(args)
        if window is not None:
            args[window] = Window(*args[window])
        if not updated:
            return function(*args)
        if not args[when]:
            return (*function(*args), *(None for _ in updated))
        for i in updated:
            args[i] = None if args[i] is None else args[i].clone()
        return (*function(*args), *(args[i] for i in updated))

    return run


def _outputs_non_differentiable(ctx, inputs, output) -> None:
    ctx.mark_non_differentiable(*(t for t in (output if isinstance(output, tuple) else (output,)) if t is not None))


def _unreachable(ctx, *grads):
    raise AssertionError("a kernel op's outputs are non-differentiable: autograd never calls this")


def _stand_in(kernel: Callable, op: torch._ops.OpOverload, cuda_twin: Callable | None, updated: list[int]) -> Callable:
    """What the Functions call for ``kernel``: in eager mode the kernel (or its CUDA twin, for a first
    tensor on a GPU); while tracing, the op, whose updated copies are then written back in place."""
    @functools.wraps(kernel)
    def call(*args):
        if not torch.compiler.is_compiling():
            return (cuda_twin(kernel) if cuda_twin is not None and args[0].is_cuda else kernel)(*args)
        outputs = op(*args)
        if not updated:
            return outputs
        own = len(outputs) - len(updated)
        for i, value in zip(updated, outputs[own:]):
            if value is not None:
                args[i].copy_(value)
        return outputs[:own]

    call.op = op
    return call


def _register_one(namespace: str, kernel: Callable, cuda_twin: Callable | None) -> Callable:
    name = kernel.__name__
    contract = CONTRACTS[name]
    qualified = f"{namespace}::{name}"
    names = [argument.name for argument in torch._C.parse_schema(qualified + contract.schema).arguments]
    op = torch.library.custom_op(qualified, _as_op(kernel, names, contract), mutates_args=(), device_types="cpu",
                                 schema=contract.schema)
    if cuda_twin is not None:
        # The twin is looked up at the first CUDA call: a CPU-only machine never imports numba's CUDA target.
        op.register_kernel("cuda", _as_op(lambda *args: cuda_twin(kernel)(*args), names, contract))
    op.register_fake(_as_op(contract.fake, names, contract))
    op.register_autograd(_unreachable, setup_context=_outputs_non_differentiable)
    overload = getattr(getattr(torch.ops, namespace), name).default
    return _stand_in(kernel, overload, cuda_twin, [names.index(argument) for argument in contract.updates])


def register(namespace: str, kernels: Kernels, cuda_twin: Callable | None = None) -> Kernels:
    """Register both kernels as the ops ``namespace::<kernel name>`` (``cuda_twin(kernel)``, if given,
    is the CUDA kernel of each); return what the Functions call in their place (see the module doc).
    Each returned function has the op as its ``op`` attribute and the kernel as ``__wrapped__``."""
    return Kernels(*(_register_one(namespace, kernel, cuda_twin) for kernel in kernels))

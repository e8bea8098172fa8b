"""The kernels as torch.library custom ops: what torch.compile and torch.export see of a kernel.

Each op of ``functions`` is an ``autograd.Function`` over two kernels, forward and backward.
:func:`register` makes each kernel an operator named after it in its impl's namespace
(``scalar_ops::conv2d_forward``, ``scalar_ops::conv2d_backward``, ...) with

- a schema: the kernel contract of ``functions`` in the dispatcher's types, written once below
  for every impl (the :class:`~simple_conv_net.functions.Window` of a sliding-window op becomes
  its 11 ints, ``SymInt[] geometry``; the gradients a backward is asked for, ``bool[] needs``;
  an unneeded gradient, ``None``);
- a fake implementation, also written once: the outputs' shapes and dtypes from the inputs',
  so a compiler knows them without running a kernel (dynamo cannot trace numba);
- a kernel per device type: the function itself for ``cpu``, and for ``cuda`` its twin
  where the impl has one (``cuda_twin``);
- an autograd registration that marks every output non-differentiable. A kernel always runs
  below autograd, inside a Function's forward or backward: the Function is its derivative. The
  op says so, so it behaves alike in and out of grad mode (with the default registration its
  outputs would require grad and fail only when backward reached them).

Every op is functional. Batch norm's forward kernel updates the running statistics in place;
its op runs the kernel on copies of them and returns the copies after its outputs, and the
caller writes them back (as ATen's own functional batch norm does). Only a functional op can
have an autograd registration, and a compiler handles it without re-inplacing tricks.

The Functions call what :func:`register` returns, a twin of each kernel with its name and
contract: in eager mode it runs the kernel function itself, without the dispatcher, which
costs about 6 us a call in Python; while torch.compile or torch.export traces, it calls the
registered op.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import torch

from .functions import Kernels, Window

__all__ = ["CONTRACTS", "Contract", "register", "registered_ops"]


class Contract(NamedTuple):
    """A kernel's schema (arguments and returns, without the name), its fake implementation
    (taking the kernel's own arguments, a Window where the schema has ``geometry``, and giving the
    kernel's own outputs), and the arguments the kernel updates in place, which the op returns
    updated after those outputs (``Tensor?`` each in the schema: None where the argument is None)."""

    schema: str
    fake: Callable
    updates: tuple[str, ...] = ()


def _empty(like: torch.Tensor, shape, dtype=None) -> torch.Tensor:
    """A new contiguous tensor of ``shape`` like ``like`` (device, and dtype unless given)."""
    return like.new_empty(tuple(shape), dtype=dtype)


def _wanted(like: torch.Tensor, needs, *shapes) -> tuple:
    """The gradients a backward returns: an empty tensor of each shape asked for, None for the others."""
    return tuple(_empty(like, shape) if needed else None for needed, shape in zip(needs, shapes))


def _linear_backward(grad_output, input, weight, needs):
    rows, features = grad_output.shape
    width = (weight if weight is not None else input).shape[1]
    return _wanted(grad_output, needs, (rows, width), (features, width), (features,))


def _flatten_forward(input, start_dim, end_dim):
    shape = input.shape
    return _empty(input, (*shape[:start_dim], math.prod(shape[start_dim:end_dim + 1]), *shape[end_dim + 1:]))


def _batch_norm_forward(input, running_mean, running_var, weight, bias, training, momentum, eps):
    return _empty(input, input.shape), _empty(input, input.shape), _empty(input, input.shape[1:2])


def _batch_norm_backward(grad_output, x_hat, inv_std, weight, training, needs):
    channels = grad_output.shape[1:2]
    return _wanted(grad_output, needs, grad_output.shape, channels, channels)


def _same_shape(like, *_):
    return _empty(like, like.shape)


# One row per kernel of the contract table in ``functions``.
CONTRACTS = {
    "conv2d_forward": Contract(
        "(Tensor input, Tensor weight, Tensor? bias, SymInt[] geometry) -> Tensor",
        lambda input, weight, bias, g: _empty(input, g.output_shape)),
    "conv2d_backward": Contract(
        "(Tensor grad_output, Tensor? input, Tensor? weight, SymInt[] geometry, bool[] needs) "
        "-> (Tensor?, Tensor?, Tensor?)",
        lambda grad_output, input, weight, g, needs: _wanted(
            grad_output, needs, g.input_shape, (g.c_out, g.c_in, g.k_h, g.k_w), (g.c_out,))),
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
        "(Tensor input, Tensor target, str reduction) -> Tensor",
        lambda input, target, reduction: _empty(input, input.shape[:1] if reduction == "none" else ())),
    "nll_loss_backward": Contract(
        "(Tensor grad_output, Tensor target, SymInt[] input_shape, str reduction) -> Tensor",
        lambda grad_output, target, input_shape, reduction: _empty(grad_output, input_shape)),
    "batch_norm_forward": Contract(
        "(Tensor input, Tensor? running_mean, Tensor? running_var, Tensor? weight, Tensor? bias, "
        "bool training, float momentum, float eps) -> (Tensor, Tensor, Tensor, Tensor?, Tensor?)",
        _batch_norm_forward, updates=("running_mean", "running_var")),
    "batch_norm_backward": Contract(
        "(Tensor grad_output, Tensor x_hat, Tensor inv_std, Tensor? weight, bool training, bool[] needs) "
        "-> (Tensor?, Tensor?, Tensor?)",
        _batch_norm_backward),
}


def _as_op(function: Callable, schema: torch._C.FunctionSchema, updates: tuple[str, ...]) -> Callable:
    """``function`` (kernel or fake) as the op implements it: called with the op's arguments
    (``geometry`` back to a Window), on copies of the arguments it updates, returned after its outputs."""
    names = [argument.name for argument in schema.arguments]
    windows = {names.index("geometry")} if "geometry" in names else set()
    updated = [names.index(name) for name in updates]

    @functools.wraps(function)
    def run(*args):
        args = [Window(*arg) if i in windows else arg for i, arg in enumerate(args)]
        copies = [None if args[i] is None else args[i].clone() for i in updated]
        for i, copy in zip(updated, copies):
            args[i] = copy
        outputs = function(*args)
        return (*outputs, *copies) if updated else outputs

    return run


def _outputs_non_differentiable(ctx, inputs, output) -> None:
    ctx.mark_non_differentiable(*(t for t in (output if isinstance(output, tuple) else (output,)) if t is not None))


def _never(ctx, *grads):
    raise AssertionError("unreachable: every output of a kernel op is non-differentiable")


_OPS: dict[str, object] = {}


def registered_ops() -> dict[str, object]:
    """Every op registered so far, by qualified name ('scalar_ops::conv2d_forward': its CustomOpDef)."""
    return dict(_OPS)


def _register_one(namespace: str, kernel: Callable, cuda_twin: Callable | None) -> Callable:
    name = kernel.__name__
    contract = CONTRACTS[name]
    qualified = f"{namespace}::{name}"
    schema = torch._C.parse_schema(f"{qualified}{contract.schema}")
    op = torch.library.custom_op(qualified, _as_op(kernel, schema, contract.updates), mutates_args=(),
                                 device_types="cpu", schema=contract.schema)
    if cuda_twin is not None:
        # The twin module is imported at the first CUDA call, so a CPU-only machine never needs numba's CUDA target.
        op.register_kernel("cuda", _as_op(lambda *args: cuda_twin(kernel)(*args), schema, contract.updates))
    op.register_fake(_as_op(contract.fake, schema, contract.updates))
    op.register_autograd(_never, setup_context=_outputs_non_differentiable)
    _OPS[qualified] = op
    overload = getattr(getattr(torch.ops, namespace), name).default
    eager = kernel if cuda_twin is None else _by_device(kernel, cuda_twin)
    updated = [i for i, argument in enumerate(schema.arguments) if argument.name in contract.updates]

    @functools.wraps(kernel)
    def call(*args):
        if not torch.compiler.is_compiling():
            return eager(*args)
        outputs = overload(*args)
        if not updated:
            return outputs
        for i, value in zip(updated, outputs[-len(updated):]):
            if value is not None:
                args[i].copy_(value)
        return outputs[:-len(updated)]

    call.op = overload
    return call


def _by_device(kernel: Callable, cuda_twin: Callable) -> Callable:
    """Eager mode's own device dispatch: the CUDA twin for a first tensor on a GPU, else the kernel."""
    def run(tensor, *args):
        return cuda_twin(kernel)(tensor, *args) if tensor.is_cuda else kernel(tensor, *args)

    return run


def register(namespace: str, kernels: Kernels, cuda_twin: Callable | None = None) -> Kernels:
    """Register both kernels as ``namespace::<kernel name>`` ops (CUDA kernel: ``cuda_twin(kernel)``);
    return the kernels for the Functions to call (see the module doc)."""
    return Kernels(*(_register_one(namespace, kernel, cuda_twin) for kernel in kernels))

"""The autograd glue, written once for both implementations.

Each op of ``vector_ops`` and ``scalar_ops`` is a pair of kernels, ``forward``
and ``backward``, that do the arithmetic. This module wraps such a pair in a
``torch.autograd.Function`` and gives it the signature of its
``torch.nn.functional`` twin, so a model is written once and the implementation
is a parameter::

    conv2d = conv2d_op(Kernels(conv2d_forward, conv2d_backward))
    y = conv2d(x, w, b, stride=2, padding=1)   # like torch.nn.functional.conv2d
    conv2d.kernels                             # the pair it runs

The Functions check their arguments (``checks``), save only what the backward
kernel needs, honour ``ctx.needs_input_grad`` and are differentiable once
(:func:`differentiable_once`): the backward kernels are hand-written and have no
derivative of their own, so asking for a second derivative is refused with a message.

Kernel contracts (all tensors on one device, one floating dtype; ``geometry`` is
the :class:`Window` of a sliding-window op, with every size the loops need):

=============  ================================================  ==============================================
op             forward(...) -> ...                               backward(...) -> ...
=============  ================================================  ==============================================
conv2d         (x, w, b|None, geometry) -> y                      (gy, x|None, w|None, geometry,
                                                                  needs: 3 bools) -> (gx, gw, gb)
max_pool2d     (x, geometry) -> (y, argmax: int64 [N, C, H_out,  (gy, argmax, geometry) -> gx
               W_out], flat index into the H*W input plane)
relu           (x) -> y                                          (gy, y) -> gx
linear         (x: [N, D], w, b|None) -> y: [N, P]               (gy, x|None, w|None, needs) -> (gx, gw, gb)
flatten        (x, start_dim, end_dim) -> y                      (gy, x_shape) -> gx
log_softmax    (x: [R, C]) -> y: [R, C], along C                 (gy, y) -> gx
nll_loss       (x: [N, C], target, reduction) -> loss            (g_loss, target, x_shape, reduction) -> gx
batch_norm     (x: [N, C, L], running_mean|None, running_var|    (gy, x_hat, inv_std, weight|None, training,
               None, weight|None, bias|None, training, momentum,  needs: 3 bools) -> (gx, gw, gb)
               eps) -> (y, x_hat, inv_std: [C]); updates the
               running statistics in place when training
=============  ================================================  ==============================================

The same table in the dispatcher's types, with each kernel's fake implementation, is
``custom_ops.CONTRACTS``: the scalar kernels are registered as torch.library custom ops
(``scalar_ops::conv2d_forward``, ...), which is how torch.compile and torch.export see them.

Unneeded gradients come back as None. ``linear`` and ``log_softmax`` kernels see
2-D tensors only: the Functions fold leading dimensions (and move ``dim`` last)
around them, as the batch dimensions of these ops are independent rows; likewise
``batch_norm`` kernels see [N, C, L], every spatial position folded into L.
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import torch
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from . import checks


class Window(NamedTuple):
    """Every size of a sliding-window op (conv2d, max_pool2d), computed once from the shapes.

    Output position (m, l) reads input rows m*s_h + i - p_h and columns l*s_w + j - p_w
    for kernel offsets 0 <= i < k_h, 0 <= j < k_w (eqs. 1-2 with stride and padding).
    """

    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    k_h: int
    k_w: int
    s_h: int
    s_w: int
    p_h: int
    p_w: int

    @property
    def h_out(self) -> int:
        return (self.h + 2 * self.p_h - self.k_h) // self.s_h + 1

    @property
    def w_out(self) -> int:
        return (self.w + 2 * self.p_w - self.k_w) // self.s_w + 1

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return self.n, self.c_in, self.h, self.w

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return self.n, self.c_out, self.h_out, self.w_out

    @classmethod
    def of(cls, input_shape, c_out, kernel_size, stride, padding) -> "Window":
        return cls(*input_shape, c_out, *kernel_size, *stride, *padding)


def differentiable_once(backward):
    """``once_differentiable``, plus a clear error where a second derivative is asked for.

    ``once_differentiable`` notices a double backward only when an incoming gradient requires grad,
    which it does not when the first derivative is taken with respect to this op's input; the second
    ``autograd.grad`` then fails far from here ("element 0 of tensors does not require grad"). The
    engine runs a backward with grad mode on exactly when the caller asked for create_graph=True, so
    that is what is checked.
    """
    once = once_differentiable(backward)

    @functools.wraps(backward)
    def run(ctx, *grad_outputs):
        if torch.is_grad_enabled():
            forward = ctx.kernels.forward
            op = f"{forward.__module__.split('.')[0]}.{forward.__name__.removesuffix('_forward')}"
            raise RuntimeError(
                f"{op}: the custom ops are differentiable once: their backward "
                f"is a hand-written kernel with no derivative of its own, so create_graph=True (a second "
                f"derivative, a gradient penalty, double backward) is not supported. Use impl='torch' (native "
                f"ops) for higher-order derivatives."
            )
        return once(ctx, *grad_outputs)

    return run


class Kernels(NamedTuple):
    """The two halves of one op: the arithmetic of the forward and of the backward pass."""

    forward: Callable
    backward: Callable


class WeightedSum(Function):
    """An op whose output is a weighted sum of its input plus a bias: conv2d and linear.

    dL/dx needs the weight and dL/dw needs the input, so each is kept only when the other's
    gradient is wanted. ``extra`` are the op's non-tensor arguments (conv2d's geometry), passed
    to both kernels after the weight.
    """

    @staticmethod
    def forward(ctx, kernels, input, weight, bias, *extra):
        ctx.kernels, ctx.extra, ctx.has_bias = kernels, extra, bias is not None
        needs_input, needs_weight = ctx.needs_input_grad[1:3]
        ctx.save_for_backward(input if needs_weight else None, weight if needs_input else None)
        return kernels.forward(input, weight, bias, *extra)

    @staticmethod
    @differentiable_once
    def backward(ctx, grad_output):
        input, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad[1], ctx.needs_input_grad[2], ctx.has_bias and ctx.needs_input_grad[3]
        grads = ctx.kernels.backward(grad_output.contiguous(), input, weight, *ctx.extra, needs)
        return (None, *grads, *(None for _ in ctx.extra))


class MaxPool2d(Function):
    @staticmethod
    def forward(ctx, kernels, input, geometry):
        output, argmax = kernels.forward(input, geometry)
        ctx.kernels, ctx.geometry = kernels, geometry
        ctx.save_for_backward(argmax)
        return output

    @staticmethod
    @differentiable_once
    def backward(ctx, grad_output):
        (argmax,) = ctx.saved_tensors
        grad_input = ctx.kernels.backward(grad_output.contiguous(), argmax, ctx.geometry)
        return None, grad_input, None


class FromOutput(Function):
    """An op whose backward needs nothing but its own output: relu (z > 0) and log_softmax (exp(y))."""

    @staticmethod
    def forward(ctx, kernels, input):
        output = kernels.forward(input)
        ctx.kernels = kernels
        ctx.save_for_backward(output)
        return output

    @staticmethod
    @differentiable_once
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        return None, ctx.kernels.backward(grad_output.contiguous(), output)


class Flatten(Function):
    @staticmethod
    def forward(ctx, kernels, input, start_dim, end_dim):
        ctx.kernels, ctx.input_shape = kernels, input.shape
        return kernels.forward(input, start_dim, end_dim)

    @staticmethod
    @differentiable_once
    def backward(ctx, grad_output):
        return None, ctx.kernels.backward(grad_output.contiguous(), ctx.input_shape), None, None


class NLLLoss(Function):
    @staticmethod
    def forward(ctx, kernels, input, target, reduction):
        ctx.kernels, ctx.input_shape, ctx.reduction = kernels, input.shape, reduction
        ctx.save_for_backward(target)
        return kernels.forward(input, target, reduction)

    @staticmethod
    @differentiable_once
    def backward(ctx, grad_output):
        (target,) = ctx.saved_tensors
        grad_input = ctx.kernels.backward(grad_output.contiguous(), target, ctx.input_shape, ctx.reduction)
        return None, grad_input, None, None


class BatchNorm(Function):
    @staticmethod
    def forward(ctx, kernels, input, running_mean, running_var, weight, bias, training, momentum, eps):
        output, x_hat, inv_std = kernels.forward(input, running_mean, running_var, weight, bias,
                                                 training, momentum, eps)
        ctx.kernels, ctx.training, ctx.has_bias = kernels, training, bias is not None
        ctx.save_for_backward(x_hat, inv_std, weight)
        return output

    @staticmethod
    @differentiable_once
    def backward(ctx, grad_output):
        x_hat, inv_std, weight = ctx.saved_tensors
        needs = ctx.needs_input_grad[1], ctx.needs_input_grad[4], ctx.has_bias and ctx.needs_input_grad[5]
        grads = ctx.kernels.backward(grad_output.contiguous(), x_hat, inv_std, weight, ctx.training, needs)
        grad_input, grad_weight, grad_bias = grads
        return None, grad_input, None, None, grad_weight, grad_bias, None, None, None


def _rows(tensor: torch.Tensor, dim: int) -> tuple[torch.Tensor, Callable]:
    """View ``tensor`` as a contiguous [rows, size along dim] matrix; return it and the inverse map.

    A 0-D tensor is one row of one entry. The row count is computed, not inferred (-1), so that
    a dimension of size 0 anywhere still gives a well-defined [rows, size] shape.
    """
    if tensor.dim() == 0:
        return tensor.reshape(1, 1), lambda rows: rows.reshape(())
    if tensor.dim() == 2 and dim == 1:             # rows already: no view ops, so no autograd nodes for them
        return tensor.contiguous(), lambda rows: rows
    moved = tensor.movedim(dim, -1)
    shape = moved.shape

    def restore(rows: torch.Tensor) -> torch.Tensor:
        return rows.reshape(shape).movedim(-1, dim)

    return moved.reshape(math.prod(shape[:-1]), shape[-1]).contiguous(), restore


def conv2d_op(kernels: Kernels):
    def conv2d(input, weight, bias=None, stride=1, padding=0):
        """2-D convolution, as torch.nn.functional.conv2d (groups=1, dilation=1).

        input [N, C_in, H, W], weight [C_out, C_in, K_h, K_w], bias [C_out] or None
        -> output [N, C_out, (H + 2p_h - K_h) // s_h + 1, (W + 2p_w - K_w) // s_w + 1]
        """
        stride, padding = checks.conv2d_args(input, weight, bias, stride, padding)
        geometry = Window.of(input.shape, weight.shape[0], weight.shape[2:], stride, padding)
        return WeightedSum.apply(kernels, input, weight, bias, geometry)

    conv2d.kernels = kernels
    return conv2d


def max_pool2d_op(kernels: Kernels):
    def max_pool2d(input, kernel_size, stride=None, padding=0):
        """2-D max pooling, as torch.nn.functional.max_pool2d (padding counts as -inf).

        input [N, C, H, W] -> output [N, C, (H + 2p_h - k_h) // s_h + 1, (W + 2p_w - k_w) // s_w + 1];
        stride defaults to kernel_size.
        """
        kernel_size, stride, padding = checks.max_pool2d_args(input, kernel_size, stride, padding)
        geometry = Window.of(input.shape, input.shape[1], kernel_size, stride, padding)
        return MaxPool2d.apply(kernels, input, geometry)

    max_pool2d.kernels = kernels
    return max_pool2d


def relu_op(kernels: Kernels):
    def relu(input):
        """Rectified linear unit, max(x, 0) elementwise; output has the shape of input."""
        checks.relu_args(input)
        return FromOutput.apply(kernels, input)

    relu.kernels = kernels
    return relu


def linear_op(kernels: Kernels):
    def linear(input, weight, bias=None):
        """Fully connected layer, y = x w^T + b: input [*, D], weight [P, D], bias [P] -> output [*, P]."""
        checks.linear_args(input, weight, bias)
        if input.dim() == 2:                        # rows already: no view ops, so no autograd nodes for them
            return WeightedSum.apply(kernels, input, weight, bias)
        rows = input.reshape(math.prod(input.shape[:-1]), input.shape[-1])
        output = WeightedSum.apply(kernels, rows, weight, bias)
        return output.reshape(*input.shape[:-1], weight.shape[0])

    linear.kernels = kernels
    return linear


def flatten_op(kernels: Kernels):
    def flatten(input, start_dim=1, end_dim=-1):
        """Merge dims start_dim..end_dim into one, in row-major order (the homework's eqs. 3-4).

        Note the default start_dim=1, as torch.nn.functional.flatten / nn.Flatten:
        [N, C, H, W] -> [N, C*H*W].
        """
        start, end = checks.flatten_args(input, start_dim, end_dim)
        return Flatten.apply(kernels, input, start, end)

    flatten.kernels = kernels
    return flatten


def log_softmax_op(kernels: Kernels):
    def log_softmax(input, dim):
        """log(softmax(x)) along ``dim``, computed stably; output has the shape of input."""
        dim = checks.log_softmax_args(input, dim)
        rows, restore = _rows(input, dim)
        return restore(FromOutput.apply(kernels, rows))

    log_softmax.kernels = kernels
    return log_softmax


def nll_loss_op(kernels: Kernels):
    def nll_loss(input, target, reduction="mean"):
        """Negative log-likelihood: input [N, C] log-probabilities, target [N] int64 class indices.

        reduction 'mean' -> -(1/N) sum_n input[n, target[n]] (a 0-D tensor), 'sum' -> the sum,
        'none' -> the [N] vector of -input[n, target[n]].
        """
        checks.nll_loss_args(input, target, reduction)
        return NLLLoss.apply(kernels, input, target, reduction)

    nll_loss.kernels = kernels
    return nll_loss


def batch_norm_op(kernels: Kernels):
    def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                   eps=1e-5):
        """Batch normalisation per channel (dim 1), as torch.nn.functional.batch_norm.

        input [N, C, *] -> output of the same shape, y = weight * (x - mean) / sqrt(var + eps) + bias.
        Training: mean and biased var of the batch (over N and *), and the running statistics move
        by ``momentum`` towards the batch mean and the unbiased var, in place. Eval: the running ones.
        """
        checks.batch_norm_args(input, running_mean, running_var, weight, bias, training, momentum, eps)
        folded = input.reshape(input.shape[0], input.shape[1], math.prod(input.shape[2:]))
        output = BatchNorm.apply(kernels, folded, running_mean, running_var, weight, bias, training,
                                 momentum, eps)
        return output.reshape(input.shape)

    batch_norm.kernels = kernels
    return batch_norm

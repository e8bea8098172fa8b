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
conv2d         (x: [N, C_in, H, W], w: [C_out, C_in/groups, K_h,  (gy, x|None, w|None, geometry,
               K_w], b|None, geometry) -> y                       needs: 3 bools) -> (gx, gw, gb)
max_pool2d     (x, geometry) -> (y, argmax: int64 [N, C, H_out,  (gy, argmax, geometry) -> gx
               W_out], flat index into the H*W input plane, as
               torch's return_indices)
relu           (x) -> y                                          (gy, y) -> gx
linear         (x: [N, D], w, b|None) -> y: [N, P]               (gy, x|None, w|None, needs) -> (gx, gw, gb)
flatten        (x, start_dim, end_dim) -> y                      (gy, x_shape) -> gx
log_softmax    (x: [R, C]) -> y: [R, C], along C                 (gy, y) -> gx
nll_loss       (x: [N, C, L], target: [N, L], weight|None,       (g_loss, target, weight|None, x_shape,
               ignore_index, reduction) -> loss: [N, L] or 0-D    ignore_index, reduction) -> gx
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
``batch_norm`` and ``nll_loss`` kernels see [N, C, L], every position after the
channels folded into L (an input [C] of nll_loss is one sample, [1, C, 1]). conv2d
and max_pool2d kernels see a batch: an unbatched input [C, H, W] gets one in front.
The geometry is a :class:`~simple_conv_net.window.Window` (stride, padding, dilation,
groups and the output size, argument checks done: ``checks``).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, NamedTuple

import torch
from torch.autograd import Function
from torch.autograd.function import once_differentiable

from . import checks
from .window import Window  # noqa: F401 - re-exported: the geometry in the kernel contracts above


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
    """Returns the output and the argmax (torch's indices: flat positions in the input plane), the argmax
    non-differentiable. Its gradient is never made: autograd would otherwise fill a tensor of zeros the size
    of the output for it at every backward (materialize_grads), for nothing."""

    @staticmethod
    def forward(ctx, kernels, input, geometry):
        output, argmax = kernels.forward(input, geometry)
        ctx.kernels, ctx.geometry = kernels, geometry
        ctx.mark_non_differentiable(argmax)
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(argmax)
        return output, argmax

    @staticmethod
    @differentiable_once
    def backward(ctx, grad_output, _grad_argmax):
        if grad_output is None:                     # the output itself reached no loss
            return None, None, None
        (argmax,) = ctx.saved_tensors
        grad_input = ctx.kernels.backward(grad_output.contiguous(), argmax, ctx.geometry)
        return None, grad_input, None


class FromOutput(Function):
    """An op whose backward needs nothing but its own output: relu (z > 0) and log_softmax (exp(y)).
    ``inplace``: the output is written into the input, which is returned (relu's inplace=True)."""

    @staticmethod
    def forward(ctx, kernels, input, inplace=False):
        output = kernels.forward(input)
        if inplace:
            output = input.copy_(output)
            ctx.mark_dirty(input)
        ctx.kernels = kernels
        ctx.save_for_backward(output)
        return output

    @staticmethod
    @differentiable_once
    def backward(ctx, grad_output):
        (output,) = ctx.saved_tensors
        return None, ctx.kernels.backward(grad_output.contiguous(), output), None


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
    """input [C], [N, C] or [N, C, d1, ..., dk] and its target fold to [N, C, L] and [N, L] for the kernels;
    the 'none' loss comes back in the target's shape."""

    @staticmethod
    def forward(ctx, kernels, input, target, weight, ignore_index, reduction):
        n, c = (1, input.shape[0]) if input.dim() == 1 else input.shape[:2]
        folded = input.reshape(n, c, math.prod(input.shape[2:]))
        target_rows = target.reshape(n, folded.shape[2])
        ctx.kernels, ctx.shapes, ctx.options = kernels, (input.shape, folded.shape), (ignore_index, reduction)
        ctx.save_for_backward(target_rows, weight)
        loss = kernels.forward(folded, target_rows, weight, ignore_index, reduction)
        return loss.reshape(target.shape) if reduction == "none" else loss

    @staticmethod
    @differentiable_once
    def backward(ctx, grad_output):
        target_rows, weight = ctx.saved_tensors
        (input_shape, folded_shape), (ignore_index, reduction) = ctx.shapes, ctx.options
        grad = grad_output.reshape(target_rows.shape) if reduction == "none" else grad_output
        grad_input = ctx.kernels.backward(grad.contiguous(), target_rows, weight, folded_shape, ignore_index,
                                          reduction)
        return None, grad_input.reshape(input_shape), None, None, None, None


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


def _batched(input: torch.Tensor) -> torch.Tensor:
    """A 4-D input as it is, a 3-D (unbatched) one with a batch of one in front."""
    return input if input.dim() == 4 else input.unsqueeze(0)


def conv2d_op(kernels: Kernels):
    def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        """2-D convolution, as torch.nn.functional.conv2d (seed 000 eq. 1 with stride, padding, dilation, groups):

            z[n, co, m, l] = b[co] + sum_{ci, i, j} a[n, g*C_in/G + ci, m*s_h + i*d_h - p_h, l*s_w + j*d_w - p_w]
                                                   * w[co, ci, i, j],        g = co // (C_out/G)

        input [N, C_in, H, W] (or [C_in, H, W]), weight [C_out, C_in/G, K_h, K_w], bias [C_out] or None
        -> output [N, C_out, H_out, W_out], H_out = (H + p_h + p_h' - d_h*(K_h - 1) - 1) // s_h + 1 (likewise W);
        padding an int, a pair, 'valid' (0) or 'same' (stride 1; d*(K - 1) in all, the odd one after: p').
        """
        geometry = checks.conv2d_args(input, weight, bias, stride, padding, dilation, groups)
        output = WeightedSum.apply(kernels, _batched(input), weight, bias, geometry)
        return output if input.dim() == 4 else output.squeeze(0)

    conv2d.kernels = kernels
    return conv2d


def max_pool2d_op(kernels: Kernels):
    def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        """2-D max pooling, as torch.nn.functional.max_pool2d (seed 000 eq. 2 with stride, padding, dilation):

            z[n, c, m, l] = max_{i, j} a[n, c, m*s_h + i*d_h - p_h, l*s_w + j*d_w - p_w]   (padding: -inf)

        input [N, C, H, W] (or [C, H, W]) -> output [N, C, H_out, W_out], H_out = (H + 2p_h - d_h*(K_h - 1) - 1)
        / s_h + 1 rounded down, or up with ceil_mode (then no window starts in the right padding); stride
        defaults to kernel_size. return_indices: also each maximum's flat index h*W + w in its input plane
        (int64, not differentiable), as PyTorch returns them.
        """
        geometry = checks.max_pool2d_args(input, kernel_size, stride, padding, dilation, ceil_mode)
        output, indices = MaxPool2d.apply(kernels, _batched(input), geometry)
        if input.dim() == 3:
            output, indices = output.squeeze(0), indices.squeeze(0)
        return (output, indices) if return_indices else output

    max_pool2d.kernels = kernels
    return max_pool2d


def relu_op(kernels: Kernels):
    def relu(input, inplace=False):
        """Rectified linear unit, z = max(a, 0) elementwise; output has the shape of input (inplace: written
        into the input, which is returned, as torch.nn.functional.relu)."""
        checks.relu_args(input)
        return FromOutput.apply(kernels, input, bool(inplace))

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
    def flatten(input, start_dim=0, end_dim=-1):
        """Merge dims start_dim..end_dim into one, in row-major order (the homework's eqs. 3-4), as torch.flatten:
        by default every dim (a 0-D input gives [1]). A layer flattens each sample with start_dim=1:
        [N, C, H, W] -> [N, C*H*W], z[n, j] = a[n, c, m, l] with j = c*H*W + m*W + l.
        """
        start, end = checks.flatten_args(input, start_dim, end_dim)
        return Flatten.apply(kernels, input, start, end)

    flatten.kernels = kernels
    return flatten


def log_softmax_op(kernels: Kernels):
    def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
        """y = x - max_c x - log(sum_c exp(x - max_c x)) along ``dim``, computed stably; output has the shape of
        input. As torch.nn.functional.log_softmax: ``dtype`` casts the input first (float32 or float64), dim=None
        is the implicit choice (deprecated by PyTorch, with its warning); _stacklevel is accepted and unused."""
        dim = checks.log_softmax_args(input, dim, dtype)
        rows, restore = _rows(input if dtype is None else input.to(dtype), dim)
        return restore(FromOutput.apply(kernels, rows))

    log_softmax.kernels = kernels
    return log_softmax


def nll_loss_op(kernels: Kernels):
    def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        """Negative log-likelihood, as torch.nn.functional.nll_loss: input [N, C] log-probabilities (or [C], or
        [N, C, d1, ..., dk]), target [N] class indices (or [], or [N, d1, ..., dk]), with w_t = weight[t] (1
        without weights) and 0 where t = ignore_index:

            'none' -> loss[n] = -w_{t_n} input[n, t_n]     (target's shape)
            'sum'  -> sum_n loss[n]
            'mean' -> sum_n loss[n] / sum_n w_{t_n}        (the weighted mean; NaN when every target is ignored)

        over every position of a K-dimensional input alike. size_average and reduce are PyTorch's deprecated
        spelling of reduction, mapped as it maps them (with its warning).
        """
        reduction = checks.legacy_reduction(size_average, reduce, reduction)
        checks.nll_loss_args(input, target, weight, ignore_index, reduction)
        return NLLLoss.apply(kernels, input, target, weight, ignore_index, reduction)

    nll_loss.kernels = kernels
    return nll_loss


def batch_norm_op(kernels: Kernels):
    def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False, momentum=0.1,
                   eps=1e-5):
        """Batch normalisation per channel (dim 1), as torch.nn.functional.batch_norm.

        input [N, C, *] -> output of the same shape, y = weight * (x - mean) / sqrt(var + eps) + bias.
        Training: mean and biased var of the batch (over N and *), and the running statistics move
        by ``momentum`` towards the batch mean and the unbiased var, in place:
        running = (1 - momentum) * running + momentum * statistic (any real momentum, as PyTorch; a module's
        momentum=None, the cumulative average, is checks.running_average_factor). Eval: the running ones.
        An empty input gives an empty output and leaves the running statistics as they are.
        """
        checks.batch_norm_args(input, running_mean, running_var, weight, bias, training, momentum, eps)
        channels = input.shape[1] if input.dim() > 1 else 0
        folded = input.reshape(input.shape[0], channels, math.prod(input.shape[2:]))
        output = BatchNorm.apply(kernels, folded, running_mean, running_var, weight, bias, bool(training),
                                 float(momentum), float(eps))
        return output.reshape(input.shape)

    batch_norm.kernels = kernels
    return batch_norm

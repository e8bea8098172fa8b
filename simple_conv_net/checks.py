"""Argument checks shared by every custom op.

Both implementations (``vector_ops`` and ``scalar_ops``) call these before any
kernel runs, so bad input fails here with a message that names the op, the
argument, what was expected and what was given, and never deep in a kernel.
Each check mirrors the rule native PyTorch enforces for the same call (the few
that are ours alone say so). The checks also normalise the arguments, once for
both impls: ints and pairs, conv2d's 'valid' and 'same' padding, the output sizes
of dilated and ceil_mode windows (a :class:`~simple_conv_net.window.Window`),
nll_loss's legacy reduction arguments.
"""

from __future__ import annotations

import warnings

import torch

from .window import Window, conv_output_size, pool_output_size, same_padding


def _fail(op: str, argument: str, expected: str, given: object) -> ValueError:
    return ValueError(f"{op}(): argument '{argument}' expected {expected}, got {given}")


def _describe(tensor: torch.Tensor) -> str:
    return f"a {tensor.dim()}-D tensor of shape {tuple(tensor.shape)}"


def require_tensor(op: str, argument: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{op}(): argument '{argument}' expected a torch.Tensor, got {type(value).__name__}")
    return value


def require_ndim(op: str, argument: str, tensor: torch.Tensor, ndim: int, layout: str) -> None:
    if tensor.dim() != ndim:
        raise _fail(op, argument, f"a {ndim}-D tensor {layout}", _describe(tensor))


# The dtypes every op of both impls computes in. Half precision (float16, bfloat16) is refused: the
# scalar kernels have no arithmetic for it and the parity tolerances are set for these two.
FLOATING = (torch.float32, torch.float64)


def require_floating(op: str, argument: str, tensor: torch.Tensor) -> None:
    if tensor.dtype not in FLOATING:
        raise TypeError(
            f"{op}(): argument '{argument}' expected a float32 or float64 tensor, got dtype {tensor.dtype}"
            + (" (half precision is not supported by these ops)" if tensor.is_floating_point() else "")
        )


def require_sizes(op: str, argument: str, tensor: torch.Tensor, layout: str, first: int = 1) -> None:
    """Every dimension from ``first`` on is non-zero (only the batch may be empty), as PyTorch's
    convolution and pooling require."""
    if any(size == 0 for size in tensor.shape[first:]):
        which = "every size but the batch" if first else "every size"
        raise _fail(op, argument, f"a tensor {layout} with {which} non-zero", _describe(tensor))


def require_same_kind(op: str, reference: str, ref: torch.Tensor, argument: str, tensor: torch.Tensor) -> None:
    """``tensor`` must live on the same device with the same dtype as ``ref``."""
    if tensor.device != ref.device:
        raise _fail(op, argument, f"a tensor on {ref.device} (where '{reference}' is)", f"one on {tensor.device}")
    if tensor.dtype != ref.dtype:
        raise TypeError(
            f"{op}(): argument '{argument}' expected dtype {ref.dtype} (the dtype of '{reference}'), "
            f"got {tensor.dtype}"
        )


def pair(op: str, argument: str, value: object, minimum: int) -> tuple[int, int]:
    """Normalise an int or a pair of ints (as torch.nn.functional accepts) to a pair, each >= minimum."""
    if isinstance(value, int) and not isinstance(value, bool):
        result = (value, value)
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        result = (value[0], value[1])
    else:
        raise TypeError(f"{op}(): argument '{argument}' expected an int or a pair of ints, got {value!r}")
    if min(result) < minimum:
        raise _fail(op, argument, f"values >= {minimum}", value)
    return result


def _batched_shape(op: str, input: torch.Tensor, layout: str) -> tuple[int, int, int, int]:
    """The shape of a 3-D (unbatched) or 4-D input as [N, C, H, W] (a batch of one in front of a 3-D one),
    after checking that every size but the batch is non-zero."""
    if input.dim() not in (3, 4):
        raise _fail(op, "input", f"a 3-D {layout.replace('N, ', '')} or 4-D {layout} tensor", _describe(input))
    require_sizes(op, "input", input, layout if input.dim() == 4 else layout.replace("N, ", ""),
                  first=input.dim() - 3)
    return tuple(input.shape) if input.dim() == 4 else (1, *input.shape)


def positive_int(op: str, argument: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{op}(): argument '{argument}' expected an int, got {value!r}")
    if value < 1:
        raise _fail(op, argument, "an int >= 1", value)
    return value


PADDING_STRINGS = ("valid", "same")


def conv2d_padding(padding, kernel, stride, dilation) -> tuple[tuple[int, int], tuple[int, int]]:
    """conv2d's padding as (before, after) for each of the two dims: an int, a pair of ints, 'valid' (none) or
    'same' (stride 1 only, as PyTorch requires: d*(K - 1) in all, the odd one after)."""
    op = "conv2d"
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            raise _fail(op, "padding", f"an int, a pair of ints or one of {PADDING_STRINGS}", repr(padding))
        if padding == "valid":
            return (0, 0), (0, 0)
        if stride != (1, 1):
            raise _fail(op, "padding", "'same' with stride 1 only (as PyTorch requires)",
                        f"'same' with stride {stride}")
        return tuple(zip(*(same_padding(k, d) for k, d in zip(kernel, dilation))))
    padding = pair(op, "padding", padding, 0)
    return padding, padding


def conv2d_args(input, weight, bias, stride, padding, dilation, groups) -> Window:
    """Check a conv2d call; return its Window (of the input with a batch of one in front, if it has none)."""
    op = "conv2d"
    require_tensor(op, "input", input)
    require_tensor(op, "weight", weight)
    shape = _batched_shape(op, input, "(N, C_in, H, W)")
    require_ndim(op, "weight", weight, 4, "(C_out, C_in / groups, K_h, K_w)")
    require_sizes(op, "weight", weight, "(C_out, C_in / groups, K_h, K_w)", first=0)
    require_floating(op, "input", input)
    require_same_kind(op, "input", input, "weight", weight)
    groups = positive_int(op, "groups", groups)
    c_out, kernel = weight.shape[0], tuple(weight.shape[2:])
    if c_out % groups:
        raise _fail(op, "weight", f"C_out (dim 0) divisible by groups = {groups}", _describe(weight))
    if shape[1] != weight.shape[1] * groups:
        grouped = f", groups = {groups}" if groups > 1 else ""
        raise _fail(
            op, "input", f"{weight.shape[1] * groups} channels (weight has shape {tuple(weight.shape)}{grouped})",
            f"{shape[1]} channels (shape {tuple(input.shape)})",
        )
    if bias is not None:
        require_tensor(op, "bias", bias)
        require_same_kind(op, "input", input, "bias", bias)
        if bias.dim() != 1 or bias.shape[0] != c_out:
            raise _fail(op, "bias", f"a 1-D tensor of length C_out = {c_out}", _describe(bias))
    stride = pair(op, "stride", stride, 1)
    dilation = pair(op, "dilation", dilation, 1)
    before, after = conv2d_padding(padding, kernel, stride, dilation)
    for axis, name in ((0, "height"), (1, "width")):
        padded = shape[2 + axis] + before[axis] + after[axis]
        span = dilation[axis] * (kernel[axis] - 1) + 1
        if span > padded:
            dilated = f" (dilated: {span})" if dilation[axis] > 1 else ""
            raise _fail(
                op, "weight", f"a kernel {name} <= the padded input {name} {padded}",
                f"kernel {name} {kernel[axis]}{dilated} (weight shape {tuple(weight.shape)})",
            )
    output_size = tuple(conv_output_size(shape[2 + a], kernel[a], stride[a], before[a], after[a], dilation[a])
                        for a in range(2))
    return Window.of(shape, c_out, kernel, stride, before, dilation, groups, output_size)


def _window_reads_the_input(size: int, kernel: int, stride: int, padding: int, dilation: int, out: int) -> bool:
    """Whether every pooling window holds an input element. Only windows that start in the padding before
    the input can miss (the output size makes the others start inside it)."""
    for m in range(out):
        start = m * stride - padding
        if start >= 0:
            return True
        first = (dilation - 1 - start) // dilation                     # the first i with start + i*d >= 0
        if first >= kernel or start + first * dilation >= size:
            return False
    return True


def max_pool2d_args(input, kernel_size, stride, padding, dilation, ceil_mode) -> Window:
    """Check a max_pool2d call; return its Window (of the input with a batch of one in front, if it has none)."""
    op = "max_pool2d"
    require_tensor(op, "input", input)
    shape = _batched_shape(op, input, "(N, C, H, W)")
    require_floating(op, "input", input)
    kernel_size = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel_size if stride is None or stride == [] or stride == () else pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    dilation = pair(op, "dilation", dilation, 1)
    if not isinstance(ceil_mode, bool):
        raise TypeError(f"{op}(): argument 'ceil_mode' expected a bool, got {ceil_mode!r}")
    output_size = []
    for axis in range(2):
        if 2 * padding[axis] > kernel_size[axis]:
            raise _fail(
                op, "padding", f"at most half the kernel size {kernel_size} (as PyTorch requires)",
                f"{padding}",
            )
        size = shape[2 + axis]
        out = pool_output_size(size, kernel_size[axis], stride[axis], padding[axis], dilation[axis], ceil_mode)
        if out < 1:
            raise _fail(
                op, "kernel_size", f"a window that fits the padded input (size {size + 2 * padding[axis]} along "
                                   f"dim {2 + axis}, dilation {dilation[axis]}): output size 0",
                f"{kernel_size}",
            )
        if not _window_reads_the_input(size, kernel_size[axis], stride[axis], padding[axis], dilation[axis], out):
            raise _fail(
                op, "dilation", f"windows that each hold an input element along dim {2 + axis} (with padding "
                                f"{padding[axis]} and size {size}, a window of kernel_size {kernel_size[axis]} "
                                f"reads only padding)", f"{dilation}",
            )
        output_size.append(out)
    return Window.of(shape, shape[1], kernel_size, stride, padding, dilation, 1, tuple(output_size))


def relu_args(input) -> None:
    require_tensor("relu", "input", input)
    require_floating("relu", "input", input)


def linear_args(input, weight, bias) -> None:
    op = "linear"
    require_tensor(op, "input", input)
    require_tensor(op, "weight", weight)
    if input.dim() < 1:
        raise _fail(op, "input", "a tensor of shape (*, in_features)", _describe(input))
    require_ndim(op, "weight", weight, 2, "(out_features, in_features)")
    require_floating(op, "input", input)
    require_same_kind(op, "input", input, "weight", weight)
    if input.shape[-1] != weight.shape[1]:
        raise _fail(
            op, "input", f"last dimension in_features = {weight.shape[1]} (weight has shape {tuple(weight.shape)})",
            _describe(input),
        )
    if bias is not None:
        require_tensor(op, "bias", bias)
        require_same_kind(op, "input", input, "bias", bias)
        if bias.dim() != 1 or bias.shape[0] != weight.shape[0]:
            raise _fail(op, "bias", f"a 1-D tensor of length out_features = {weight.shape[0]}", _describe(bias))


def dim_index(op: str, argument: str, dim: object, ndim: int) -> int:
    """Normalise a possibly negative dimension index for a tensor of ``ndim`` dims."""
    if not isinstance(dim, int) or isinstance(dim, bool):
        raise TypeError(f"{op}(): argument '{argument}' expected an int, got {dim!r}")
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise _fail(op, argument, f"a dimension in [{-size}, {size - 1}]", dim)
    return dim % size


def flatten_args(input, start_dim, end_dim) -> tuple[int, int]:
    op = "flatten"
    require_tensor(op, "input", input)
    start = dim_index(op, "start_dim", start_dim, input.dim())
    end = dim_index(op, "end_dim", end_dim, input.dim())
    if start > end:
        raise _fail(op, "start_dim", f"a dimension <= end_dim ({end_dim})", start_dim)
    return start, end


def log_softmax_args(input, dim, dtype) -> int:
    """Check a log_softmax call; return dim as an index >= 0. ``dim=None`` is torch.nn.functional's implicit
    choice (0 for a 0-, 1- or 3-D input, else 1), with its deprecation warning. With ``dtype`` (float32 or
    float64) the input is cast to it first, so it may be of any real dtype."""
    op = "log_softmax"
    require_tensor(op, "input", input)
    if dtype is None:
        require_floating(op, "input", input)
    elif dtype not in FLOATING:
        raise TypeError(f"{op}(): argument 'dtype' expected torch.float32 or torch.float64 (or None), got {dtype!r}")
    elif input.is_complex():
        raise TypeError(f"{op}(): argument 'input' expected a real tensor, got dtype {input.dtype}")
    if dim is None:
        warnings.warn("Implicit dimension choice for log_softmax has been deprecated. Change the call to include "
                      "dim=X as an argument.", stacklevel=3)
        dim = 0 if input.dim() in (0, 1, 3) else 1
    return dim_index(op, "dim", dim, input.dim())


REDUCTIONS = ("mean", "sum", "none")


def legacy_reduction(size_average, reduce, reduction: str) -> str:
    """The reduction torch.nn.functional's deprecated ``size_average`` and ``reduce`` arguments stand for, where
    either is given (with PyTorch's warning): 'none' unless reduce, else 'mean' unless size_average is False."""
    if size_average is None and reduce is None:
        return reduction
    reduce = True if reduce is None else reduce
    size_average = True if size_average is None else size_average
    legacy = "none" if not reduce else "mean" if size_average else "sum"
    warnings.warn(f"size_average and reduce args will be deprecated, please use reduction='{legacy}' instead.",
                  stacklevel=3)
    return legacy


def nll_loss_args(input, target, weight, ignore_index, reduction) -> None:
    """Check an nll_loss call: input [C], [N, C] or [N, C, d1, ..., dk] of log-probabilities, target [], [N]
    or [N, d1, ..., dk] of class indices (or ignore_index), weight [C] or None."""
    op = "nll_loss"
    require_tensor(op, "input", input)
    require_tensor(op, "target", target)
    if input.dim() == 0:
        raise _fail(op, "input", "a tensor (C), (N, C) or (N, C, d1, ..., dk) of log-probabilities",
                    _describe(input))
    require_floating(op, "input", input)
    if target.dtype != torch.int64:
        raise TypeError(f"{op}(): argument 'target' expected dtype torch.int64 (class indices), got {target.dtype}")
    if target.device != input.device:
        raise _fail(op, "target", f"a tensor on {input.device} (where 'input' is)", f"one on {target.device}")
    expected = input.shape[:1] + input.shape[2:] if input.dim() > 1 else ()
    if tuple(target.shape) != tuple(expected):
        layout = "a 0-D tensor" if not expected else f"a tensor of shape {tuple(expected)} (length N = {expected[0]}"
        layout += "" if not expected else (", then input's dims after C)" if input.dim() > 2 else ")")
        raise _fail(op, "target", layout, _describe(target))
    classes = input.shape[1] if input.dim() > 1 else input.shape[0]
    if weight is not None:
        require_tensor(op, "weight", weight)
        require_same_kind(op, "input", input, "weight", weight)
        if weight.dim() != 1 or weight.shape[0] != classes:
            raise _fail(op, "weight", f"a 1-D tensor of length C = {classes} (one weight per class)",
                        _describe(weight))
    if not isinstance(ignore_index, int) or isinstance(ignore_index, bool):
        raise TypeError(f"{op}(): argument 'ignore_index' expected an int, got {ignore_index!r}")
    if reduction not in REDUCTIONS:
        raise _fail(op, "reduction", f"one of {REDUCTIONS}", repr(reduction))
    if not target.numel():
        return
    if target.device.type != "cpu" or torch.compiler.is_compiling():
        # Checked on the device, without a host round trip: a bad target stops the stream with this message.
        # So under torch.compile too, where a branch on a tensor's value cannot be part of the graph.
        outside = ((target < 0) | (target >= classes)) & (target != ignore_index)
        torch._assert_async(~outside.any(), f"{op}(): argument 'target' expected class indices in "
                                            f"[0, {classes - 1}] or ignore_index = {ignore_index}")
        return
    lowest, highest = (int(t) for t in target.aminmax())        # one pass in the common case: every target a class
    if lowest < 0 or highest >= classes:
        outside = ((target < 0) | (target >= classes)) & (target != ignore_index)
        if outside.any():
            raise _fail(op, "target", f"class indices in [0, {classes - 1}] (or ignore_index = {ignore_index})",
                        f"a target of {target[outside][0]}")


def batch_norm_args(input, running_mean, running_var, weight, bias, training, momentum, eps) -> None:
    """Check a batch_norm call, as PyTorch's rules: input [N, C, *] (an empty input of any shape is returned
    empty), running statistics and affine parameters [C] or None, any real momentum (None is the module's
    cumulative average: see :func:`running_average_factor`), eps > 0 when training."""
    op = "batch_norm"
    require_tensor(op, "input", input)
    if input.dim() < 2 and input.numel():
        raise _fail(op, "input", "a tensor of shape (N, C, *) with at least 2 dimensions", _describe(input))
    require_floating(op, "input", input)
    channels = input.shape[1] if input.dim() > 1 else 0
    for argument, tensor in (("running_mean", running_mean), ("running_var", running_var),
                             ("weight", weight), ("bias", bias)):
        if tensor is None:
            continue
        require_tensor(op, argument, tensor)
        require_same_kind(op, "input", input, argument, tensor)
        if input.dim() > 1 and (tensor.dim() != 1 or tensor.shape[0] != channels):
            raise _fail(op, argument, f"a 1-D tensor of length C = {channels}", _describe(tensor))
    if (running_mean is None) != (running_var is None):
        raise _fail(op, "running_var", "to be given together with running_mean (or both None)",
                    f"running_mean {'None' if running_mean is None else 'a tensor'} and running_var "
                    f"{'None' if running_var is None else 'a tensor'}")
    if not training and running_mean is None:
        raise _fail(op, "running_mean", "running statistics when training=False", "None")
    if training and input.numel() and input.numel() // max(channels, 1) <= 1:
        raise _fail(op, "input", "more than 1 value per channel when training",
                    f"{_describe(input)}")
    if momentum is None:
        raise _fail(op, "momentum", "a float (as torch.nn.functional.batch_norm; momentum=None, the cumulative "
                                    "average, is a module's: it needs the module's count of batches, see "
                                    "simple_conv_net.checks.running_average_factor)", "None")
    if not isinstance(momentum, (int, float)) or isinstance(momentum, bool):
        raise TypeError(f"{op}(): argument 'momentum' expected a float, got {momentum!r}")
    if not isinstance(eps, (int, float)) or isinstance(eps, bool):
        raise TypeError(f"{op}(): argument 'eps' expected a float, got {eps!r}")
    if training and not eps > 0:
        raise _fail(op, "eps", "a float > 0 when training (a channel of equal values would divide by 0; "
                               "PyTorch refuses it too)", repr(eps))


def running_average_factor(momentum: float | None, num_batches_tracked: torch.Tensor | None) -> float:
    """The momentum a batch-norm module passes to batch_norm in a training step, as torch.nn.BatchNorm does:
    its own, or with momentum None the cumulative average 1 / (batches seen, this one included), so that the
    running statistics are the plain mean of every batch's. The caller counts the batch first."""
    if momentum is not None:
        return momentum
    if num_batches_tracked is None:
        raise ValueError("batch_norm: momentum=None (the cumulative average) needs the module's "
                         "num_batches_tracked (track_running_stats=True)")
    return 1.0 / float(num_batches_tracked)

"""Argument checks shared by every custom op.

Both implementations (``vector_ops`` and ``scalar_ops``) call these before any
kernel runs, so bad input fails here with a message that names the op, the
argument, what was expected and what was given, and never deep in a kernel.
Each check mirrors the rule native PyTorch enforces for the same call.
"""

from __future__ import annotations

import torch


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


def conv2d_args(input, weight, bias, stride, padding) -> tuple[tuple[int, int], tuple[int, int]]:
    """Check a conv2d call; return (stride, padding) as pairs."""
    op = "conv2d"
    require_tensor(op, "input", input)
    require_tensor(op, "weight", weight)
    require_ndim(op, "input", input, 4, "(N, C_in, H, W)")
    require_ndim(op, "weight", weight, 4, "(C_out, C_in, K_h, K_w)")
    require_sizes(op, "input", input, "(N, C_in, H, W)")
    require_sizes(op, "weight", weight, "(C_out, C_in, K_h, K_w)", first=0)
    require_floating(op, "input", input)
    require_same_kind(op, "input", input, "weight", weight)
    if input.shape[1] != weight.shape[1]:
        raise _fail(
            op, "input", f"{weight.shape[1]} channels (weight has shape {tuple(weight.shape)})",
            f"{input.shape[1]} channels (shape {tuple(input.shape)})",
        )
    if bias is not None:
        require_tensor(op, "bias", bias)
        require_same_kind(op, "input", input, "bias", bias)
        if bias.dim() != 1 or bias.shape[0] != weight.shape[0]:
            raise _fail(op, "bias", f"a 1-D tensor of length C_out = {weight.shape[0]}", _describe(bias))
    stride = pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    for axis, name in ((0, "height"), (1, "width")):
        padded = input.shape[2 + axis] + 2 * padding[axis]
        kernel = weight.shape[2 + axis]
        if kernel > padded:
            raise _fail(
                op, "weight", f"a kernel {name} <= the padded input {name} {padded}",
                f"kernel {name} {kernel} (weight shape {tuple(weight.shape)})",
            )
    return stride, padding


def max_pool2d_args(input, kernel_size, stride, padding):
    """Check a max_pool2d call; return (kernel_size, stride, padding) as pairs."""
    op = "max_pool2d"
    require_tensor(op, "input", input)
    require_ndim(op, "input", input, 4, "(N, C, H, W)")
    require_sizes(op, "input", input, "(N, C, H, W)")
    require_floating(op, "input", input)
    kernel_size = pair(op, "kernel_size", kernel_size, 1)
    stride = kernel_size if stride is None or stride == [] or stride == () else pair(op, "stride", stride, 1)
    padding = pair(op, "padding", padding, 0)
    for axis in range(2):
        if 2 * padding[axis] > kernel_size[axis]:
            raise _fail(
                op, "padding", f"at most half the kernel size {kernel_size} (as PyTorch requires)",
                f"{padding}",
            )
        padded = input.shape[2 + axis] + 2 * padding[axis]
        if kernel_size[axis] > padded:
            raise _fail(
                op, "kernel_size", f"at most the padded input size {padded} along dim {2 + axis}",
                f"{kernel_size}",
            )
    return kernel_size, stride, padding


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


def log_softmax_args(input, dim) -> int:
    op = "log_softmax"
    require_tensor(op, "input", input)
    require_floating(op, "input", input)
    if dim is None:
        raise TypeError(f"{op}(): argument 'dim' expected an int, got None (implicit dim is not supported)")
    return dim_index(op, "dim", dim, input.dim())


REDUCTIONS = ("mean", "sum", "none")


def nll_loss_args(input, target, reduction) -> None:
    op = "nll_loss"
    require_tensor(op, "input", input)
    require_tensor(op, "target", target)
    require_ndim(op, "input", input, 2, "(N, C) of log-probabilities")
    require_floating(op, "input", input)
    if target.dtype != torch.int64:
        raise TypeError(f"{op}(): argument 'target' expected dtype torch.int64 (class indices), got {target.dtype}")
    if target.device != input.device:
        raise _fail(op, "target", f"a tensor on {input.device} (where 'input' is)", f"one on {target.device}")
    if target.dim() != 1 or target.shape[0] != input.shape[0]:
        raise _fail(op, "target", f"a 1-D tensor of length N = {input.shape[0]}", _describe(target))
    if reduction not in REDUCTIONS:
        raise _fail(op, "reduction", f"one of {REDUCTIONS}", repr(reduction))
    if not target.numel():
        return
    outside = (target < 0) | (target >= input.shape[1])
    if target.device.type != "cpu" or torch.compiler.is_compiling():
        # Checked on the device, without a host round trip: a bad target stops the stream with this message.
        # So under torch.compile too, where a branch on a tensor's value cannot be part of the graph.
        torch._assert_async(~outside.any(), f"{op}(): argument 'target' expected class indices in "
                                            f"[0, {input.shape[1] - 1}]")
    elif outside.any():
        raise _fail(op, "target", f"class indices in [0, {input.shape[1] - 1}]", f"a target of {target[outside][0]}")


def batch_norm_args(input, running_mean, running_var, weight, bias, training, momentum, eps) -> None:
    op = "batch_norm"
    require_tensor(op, "input", input)
    if input.dim() < 2:
        raise _fail(op, "input", "a tensor of shape (N, C, *) with at least 2 dimensions", _describe(input))
    require_floating(op, "input", input)
    channels = input.shape[1]
    for argument, tensor in (("running_mean", running_mean), ("running_var", running_var),
                             ("weight", weight), ("bias", bias)):
        if tensor is None:
            continue
        require_tensor(op, argument, tensor)
        require_same_kind(op, "input", input, argument, tensor)
        if tensor.dim() != 1 or tensor.shape[0] != channels:
            raise _fail(op, argument, f"a 1-D tensor of length C = {channels}", _describe(tensor))
    if (running_mean is None) != (running_var is None):
        raise _fail(op, "running_var", "to be given together with running_mean (or both None)",
                    f"running_mean {'None' if running_mean is None else 'a tensor'} and running_var "
                    f"{'None' if running_var is None else 'a tensor'}")
    if not training and running_mean is None:
        raise _fail(op, "running_mean", "running statistics when training=False", "None")
    if training and input.numel() // max(channels, 1) <= 1:
        raise _fail(op, "input", "more than 1 value per channel when training",
                    f"{_describe(input)}")
    if not isinstance(momentum, (int, float)) or isinstance(momentum, bool) or not 0 <= momentum <= 1:
        raise _fail(op, "momentum", "a float in [0, 1]", repr(momentum))
    if not isinstance(eps, (int, float)) or isinstance(eps, bool) or eps < 0:
        raise _fail(op, "eps", "a float >= 0", repr(eps))
    if training and eps == 0:
        raise _fail(op, "eps", "a float > 0 when training (a channel of equal values would divide by 0; "
                               "PyTorch refuses it too)", repr(eps))

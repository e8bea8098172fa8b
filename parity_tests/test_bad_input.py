"""Bad input fails before any kernel runs, with a message naming the argument, what was expected and what was given."""

import pytest
import torch

from simple_conv_net.backends import get_ops

f32, f64 = torch.float32, torch.float64


def t(*shape, dtype=f32):
    return torch.zeros(*shape, dtype=dtype)


# (op, args, kwargs, exception, message fragments)
CASES = {
    "conv-input-ndim": ("conv2d", (t(1, 8, 8), t(2, 1, 3, 3)), {}, ValueError, ["'input'", "4-D", "3-D"]),
    "conv-weight-ndim": ("conv2d", (t(1, 1, 8, 8), t(2, 3, 3)), {}, ValueError, ["'weight'", "4-D"]),
    "conv-channels": ("conv2d", (t(1, 3, 8, 8), t(2, 1, 3, 3)), {}, ValueError, ["'input'", "1 channels", "3 channels"]),
    "conv-bias-length": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3), t(3)), {}, ValueError, ["'bias'", "length C_out = 2"]),
    "conv-kernel-too-big": ("conv2d", (t(1, 1, 4, 4), t(2, 1, 5, 5)), {}, ValueError, ["'weight'", "padded input"]),
    "conv-stride-zero": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3)), {"stride": 0}, ValueError, ["'stride'", ">= 1"]),
    "conv-padding-negative": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3)), {"padding": -1}, ValueError,
                              ["'padding'", ">= 0"]),
    "conv-stride-type": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3)), {"stride": 1.5}, TypeError, ["'stride'"]),
    "conv-int-dtype": ("conv2d", (torch.zeros(1, 1, 8, 8, dtype=torch.int64), t(2, 1, 3, 3)), {}, TypeError,
                       ["'input'", "floating", "int64"]),
    "conv-mixed-dtype": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3, dtype=f64)), {}, TypeError,
                         ["'weight'", "float32", "float64"]),
    "conv-not-tensor": ("conv2d", ([[1.0]], t(2, 1, 3, 3)), {}, TypeError, ["'input'", "list"]),
    "pool-ndim": ("max_pool2d", (t(8, 8), 2), {}, ValueError, ["'input'", "4-D"]),
    "pool-padding": ("max_pool2d", (t(1, 1, 8, 8), 2), {"padding": 2}, ValueError, ["'padding'", "half"]),
    "pool-stride": ("max_pool2d", (t(1, 1, 8, 8), 2), {"stride": 0}, ValueError, ["'stride'"]),
    "pool-kernel-too-big": ("max_pool2d", (t(1, 1, 3, 3), 5), {}, ValueError, ["'kernel_size'"]),
    "relu-int": ("relu", (torch.zeros(3, dtype=torch.int32),), {}, TypeError, ["'input'", "int32"]),
    "linear-features": ("linear", (t(2, 5), t(3, 4)), {}, ValueError, ["'input'", "in_features = 4"]),
    "linear-bias": ("linear", (t(2, 4), t(3, 4), t(4)), {}, ValueError, ["'bias'", "out_features = 3"]),
    "linear-mixed-dtype": ("linear", (t(2, 4), t(3, 4), t(3, dtype=f64)), {}, TypeError, ["'bias'"]),
    "flatten-dims": ("flatten", (t(2, 3, 4), 2, 1), {}, ValueError, ["'start_dim'"]),
    "flatten-range": ("flatten", (t(2, 3, 4), 5), {}, ValueError, ["'start_dim'", "[-3, 2]"]),
    "log-softmax-dim": ("log_softmax", (t(2, 3), 2), {}, ValueError, ["'dim'"]),
    "nll-target-range": ("nll_loss", (t(2, 3), torch.tensor([0, 3])), {}, ValueError, ["'target'", "[0, 2]", "3"]),
    "nll-target-negative": ("nll_loss", (t(2, 3), torch.tensor([-1, 0])), {}, ValueError, ["'target'", "-1"]),
    "nll-target-shape": ("nll_loss", (t(2, 3), torch.tensor([0, 1, 2])), {}, ValueError, ["'target'", "length N = 2"]),
    "nll-target-dtype": ("nll_loss", (t(2, 3), torch.tensor([0.0, 1.0])), {}, TypeError, ["'target'", "int64"]),
    "nll-input-ndim": ("nll_loss", (t(2, 3, 4), torch.tensor([0, 1])), {}, ValueError, ["'input'", "2-D"]),
    "nll-reduction": ("nll_loss", (t(2, 3), torch.tensor([0, 1])), {"reduction": "avg"}, ValueError,
                      ["'reduction'", "'avg'"]),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_named(impl, case):
    op, args, kwargs, exception, fragments = case
    with pytest.raises(exception) as error:
        getattr(get_ops(impl), op)(*args, **kwargs)
    message = str(error.value)
    assert message.startswith(f"{op}(): argument ")
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


@pytest.mark.parametrize("op", ["conv2d", "max_pool2d", "relu", "linear", "log_softmax"])
def test_native_rejects_what_we_reject(op):
    """Our rules are PyTorch's own: native rejects the same calls (so we never refuse a valid one)."""
    native = get_ops("torch")
    bad = {"conv2d": ((t(1, 3, 8, 8), t(2, 1, 3, 3)), {}), "max_pool2d": ((t(1, 1, 8, 8), 2), {"padding": 2}),
           "relu": ((torch.zeros(3, dtype=torch.int32),), {}), "linear": ((t(2, 5), t(3, 4)), {}),
           "log_softmax": ((t(2, 3), 2), {})}[op]
    with pytest.raises((RuntimeError, ValueError, TypeError, IndexError)):
        result = getattr(native, op)(*bad[0], **bad[1])
        if op == "relu":  # native relu accepts ints; we require floating point for the backward
            raise TypeError(result)


def test_scalar_kernels_name_an_unsupported_dtype():
    """float16 is floating point (the shared checks let it through, as vector runs it), but the scalar
    loops are compiled for float32 and float64 only: the error names the op, the argument and the dtype."""
    with pytest.raises(TypeError, match=r"scalar_ops\.relu\(\): argument 'input' has dtype torch\.float16"):
        get_ops("scalar").relu(torch.zeros(3, dtype=torch.float16))

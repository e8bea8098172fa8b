"""Bad input fails before any kernel runs, with a message naming the argument, what was expected and what was given."""

import pytest
import torch

from simple_conv_net.backends import get_ops

f32, f64 = torch.float32, torch.float64


def t(*shape, dtype=f32):
    return torch.zeros(*shape, dtype=dtype)


# (op, args, kwargs, exception, message fragments)
CASES = {
    "conv-input-ndim": ("conv2d", (t(8, 8), t(2, 1, 3, 3)), {}, ValueError, ["'input'", "3-D", "4-D", "2-D"]),
    "conv-weight-ndim": ("conv2d", (t(1, 1, 8, 8), t(2, 3, 3)), {}, ValueError, ["'weight'", "4-D"]),
    "conv-channels": ("conv2d", (t(1, 3, 8, 8), t(2, 1, 3, 3)), {}, ValueError, ["'input'", "1 channels", "3 channels"]),
    "conv-bias-length": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3), t(3)), {}, ValueError, ["'bias'", "length C_out = 2"]),
    "conv-kernel-too-big": ("conv2d", (t(1, 1, 4, 4), t(2, 1, 5, 5)), {}, ValueError, ["'weight'", "padded input"]),
    "conv-stride-zero": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3)), {"stride": 0}, ValueError, ["'stride'", ">= 1"]),
    "conv-padding-negative": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3)), {"padding": -1}, ValueError,
                              ["'padding'", ">= 0"]),
    "conv-stride-type": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3)), {"stride": 1.5}, TypeError, ["'stride'"]),
    "conv-int-dtype": ("conv2d", (torch.zeros(1, 1, 8, 8, dtype=torch.int64), t(2, 1, 3, 3)), {}, TypeError,
                       ["'input'", "float32 or float64", "int64"]),
    "conv-half": ("conv2d", (t(1, 1, 8, 8, dtype=torch.float16), t(2, 1, 3, 3, dtype=torch.float16)), {}, TypeError,
                  ["'input'", "float16", "half precision is not supported"]),
    "conv-no-input-channels": ("conv2d", (t(2, 0, 5, 5), t(2, 0, 3, 3)), {}, ValueError,
                               ["'input'", "every size but the batch non-zero", "(2, 0, 5, 5)"]),
    "conv-no-filters": ("conv2d", (t(2, 1, 5, 5), t(0, 1, 3, 3)), {}, ValueError, ["'weight'", "(0, 1, 3, 3)"]),
    "conv-mixed-dtype": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3, dtype=f64)), {}, TypeError,
                         ["'weight'", "float32", "float64"]),
    "conv-not-tensor": ("conv2d", ([[1.0]], t(2, 1, 3, 3)), {}, TypeError, ["'input'", "list"]),
    "conv-groups-zero": ("conv2d", (t(1, 2, 8, 8), t(2, 1, 3, 3)), {"groups": 0}, ValueError, ["'groups'", ">= 1", "0"]),
    "conv-groups-type": ("conv2d", (t(1, 2, 8, 8), t(2, 1, 3, 3)), {"groups": 2.0}, TypeError, ["'groups'", "int"]),
    "conv-groups-filters": ("conv2d", (t(1, 4, 8, 8), t(3, 2, 3, 3)), {"groups": 2}, ValueError,
                            ["'weight'", "divisible by groups = 2", "(3, 2, 3, 3)"]),
    "conv-groups-channels": ("conv2d", (t(1, 3, 8, 8), t(2, 1, 3, 3)), {"groups": 2}, ValueError,
                             ["'input'", "2 channels", "groups = 2", "3 channels"]),
    "conv-dilation-zero": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3)), {"dilation": 0}, ValueError,
                           ["'dilation'", ">= 1"]),
    "conv-dilated-kernel-too-big": ("conv2d", (t(1, 1, 6, 6), t(2, 1, 3, 3)), {"dilation": 3}, ValueError,
                                    ["'weight'", "padded input height 6", "(dilated: 7)"]),
    "conv-padding-string": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3)), {"padding": "full"}, ValueError,
                            ["'padding'", "'valid'", "'same'", "'full'"]),
    "conv-same-strided": ("conv2d", (t(1, 1, 8, 8), t(2, 1, 3, 3)), {"padding": "same", "stride": 2}, ValueError,
                          ["'padding'", "stride 1", "(2, 2)"]),
    "pool-ndim": ("max_pool2d", (t(8, 8), 2), {}, ValueError, ["'input'", "3-D", "4-D", "2-D"]),
    "pool-dilation": ("max_pool2d", (t(1, 1, 8, 8), 2), {"dilation": 0}, ValueError, ["'dilation'", ">= 1"]),
    "pool-ceil-mode-type": ("max_pool2d", (t(1, 1, 8, 8), 2), {"ceil_mode": 1}, TypeError, ["'ceil_mode'", "bool"]),
    "pool-window-of-padding": ("max_pool2d", (t(1, 1, 1, 6), 2), {"padding": 1, "dilation": 2}, ValueError,
                               ["'dilation'", "reads only padding"]),
    "pool-padding": ("max_pool2d", (t(1, 1, 8, 8), 2), {"padding": 2}, ValueError, ["'padding'", "half"]),
    "pool-stride": ("max_pool2d", (t(1, 1, 8, 8), 2), {"stride": 0}, ValueError, ["'stride'"]),
    "pool-kernel-too-big": ("max_pool2d", (t(1, 1, 3, 3), 5), {}, ValueError, ["'kernel_size'"]),
    "pool-no-channels": ("max_pool2d", (t(2, 0, 4, 4), 2), {}, ValueError, ["'input'", "(2, 0, 4, 4)"]),
    "relu-int": ("relu", (torch.zeros(3, dtype=torch.int32),), {}, TypeError, ["'input'", "int32"]),
    "relu-bfloat16": ("relu", (torch.zeros(3, dtype=torch.bfloat16),), {}, TypeError, ["'input'", "bfloat16"]),
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
    "nll-input-0-d": ("nll_loss", (torch.tensor(0.0), torch.tensor(0)), {}, ValueError, ["'input'", "(C), (N, C) or (N, C, d1"]),
    "nll-k-dim-target": ("nll_loss", (t(2, 3, 4), torch.tensor([0, 1])), {}, ValueError,
                         ["'target'", "(2, 4)", "input's dims after C"]),
    "nll-weight-length": ("nll_loss", (t(2, 3), torch.tensor([0, 1])), {"weight": t(2)}, ValueError,
                          ["'weight'", "length C = 3"]),
    "nll-ignore-index-type": ("nll_loss", (t(2, 3), torch.tensor([0, 1])), {"ignore_index": 1.0}, TypeError,
                              ["'ignore_index'", "int"]),
    "nll-ignored-target-beyond": ("nll_loss", (t(2, 3), torch.tensor([5, 3])), {"ignore_index": 5}, ValueError,
                                  ["'target'", "ignore_index = 5", "3"]),
    "nll-reduction": ("nll_loss", (t(2, 3), torch.tensor([0, 1])), {"reduction": "avg"}, ValueError,
                      ["'reduction'", "'avg'"]),
    "batch-norm-eps-0-training": ("batch_norm", (t(4, 3), None, None), {"training": True, "eps": 0.0}, ValueError,
                                  ["'eps'", "> 0 when training", "0.0"]),
    "batch-norm-momentum-none": ("batch_norm", (t(4, 3), None, None), {"training": True, "momentum": None},
                                 ValueError, ["'momentum'", "a float", "cumulative average", "None"]),
    "batch-norm-momentum-type": ("batch_norm", (t(4, 3), None, None), {"training": True, "momentum": "0.1"},
                                 TypeError, ["'momentum'", "float"]),
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


NATIVE_REJECTS = {
    "conv2d": ((t(1, 3, 8, 8), t(2, 1, 3, 3)), {}),
    "conv2d no filters": ((t(2, 1, 5, 5), t(0, 1, 3, 3)), {}),
    "max_pool2d": ((t(1, 1, 8, 8), 2), {"padding": 2}),
    "max_pool2d no channels": ((t(2, 0, 4, 4), 2), {}),
    "relu": ((torch.zeros(3, dtype=torch.int32),), {}),
    "linear": ((t(2, 5), t(3, 4)), {}),
    "log_softmax": ((t(2, 3), 2), {}),
    "batch_norm eps 0": ((t(4, 3), None, None), {"training": True, "eps": 0.0}),
    "batch_norm momentum None": ((t(4, 3), None, None), {"training": True, "momentum": None}),
    "conv2d groups": ((t(1, 3, 8, 8), t(2, 1, 3, 3)), {"groups": 2}),
    "conv2d same strided": ((t(1, 1, 8, 8), t(2, 1, 3, 3)), {"padding": "same", "stride": 2}),
    "conv2d padding string": ((t(1, 1, 8, 8), t(2, 1, 3, 3)), {"padding": "full"}),
    "max_pool2d ceil_mode int": ((t(1, 1, 8, 8), 2), {"ceil_mode": 1}),
    "nll_loss k-dim target": ((t(2, 3, 4), torch.tensor([0, 1])), {}),
    "nll_loss weight": ((t(2, 3), torch.tensor([0, 1])), {"weight": t(2)}),
}


@pytest.mark.parametrize("name", NATIVE_REJECTS)
def test_native_rejects_what_we_reject(name):
    """Our rules are PyTorch's own: native rejects the same calls (so we never refuse a valid one).
    Four rules are ours alone: a floating-point dtype for relu (native accepts ints; the backward needs
    floats), float32 or float64 (native computes half precision; these ops do not), conv2d's
    non-empty input channels (native returns an empty [N, 0, H_out, W_out] for C_in = 0), and a max_pool2d
    window that reads only padding (native gives -inf there and an index outside the input plane, which its
    backward would write through)."""
    args, kwargs = NATIVE_REJECTS[name]
    op = getattr(get_ops("torch"), name.split()[0])
    with pytest.raises((RuntimeError, ValueError, TypeError, IndexError)):
        result = op(*args, **kwargs)
        if name == "relu":
            raise TypeError(result)


EDGES = {
    # name: (op, args, kwargs) that native PyTorch computes; ours must give the same, gradients too
    "linear-no-in-features": ("linear", (t(3, 0), t(4, 0), torch.ones(4)), {}),
    "log-softmax-0-D": ("log_softmax", (torch.tensor(2.0), 0), {}),
    "log-softmax-no-classes": ("log_softmax", (t(3, 0), 1), {}),
    "log-softmax-no-rows": ("log_softmax", (t(0, 3), 1), {}),
    "batch-norm-eval-empty-batch": ("batch_norm", (t(0, 3, 4), t(3), torch.ones(3), torch.ones(3), t(3)), {}),
    "nll-sum-empty-batch": ("nll_loss", (t(0, 3), torch.zeros(0, dtype=torch.int64)), {"reduction": "sum"}),
    "conv-empty-batch": ("conv2d", (t(0, 1, 5, 5), torch.ones(2, 1, 3, 3)), {}),
    "pool-empty-batch": ("max_pool2d", (t(0, 2, 4, 4), 2), {}),
    "relu-0-D": ("relu", (torch.tensor(-1.0),), {}),
    "batch-norm-training-empty-batch": ("batch_norm", (t(0, 3), t(3), torch.ones(3), torch.ones(3), t(3), True), {}),
    "batch-norm-1-D-empty": ("batch_norm", (t(0), t(0), torch.ones(0)), {"training": True}),
    "nll-mean-every-target-ignored": ("nll_loss", (t(2, 3), torch.tensor([1, 1])), {"ignore_index": 1}),
}


@pytest.mark.parametrize("case", EDGES.values(), ids=EDGES.keys())
def test_zero_size_and_0_d_tensors_behave_as_native(impl, case):
    op, args, kwargs = case
    native_args = [a.clone().requires_grad_() if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                   for a in args]
    our_args = [a.clone().requires_grad_() if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                for a in args]
    expected = getattr(get_ops("torch"), op)(*native_args, **kwargs)
    result = getattr(get_ops(impl), op)(*our_args, **kwargs)
    assert result.shape == expected.shape and result.dtype == expected.dtype
    torch.testing.assert_close(result, expected, equal_nan=True)
    assert torch.equal(result.signbit(), expected.signbit())  # 0.0, not -0.0
    result.sum().backward()
    expected.sum().backward()
    for ours, theirs in zip(our_args, native_args):
        if isinstance(ours, torch.Tensor) and ours.requires_grad:
            torch.testing.assert_close(ours.grad, theirs.grad)

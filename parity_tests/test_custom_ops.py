"""The registered kernel ops pass torch.library.opcheck, and are registered as simple_conv_net.custom_ops says.

opcheck runs PyTorch's four checks of a custom op on each sample: test_schema (the op mutates
nothing it does not declare and returns no alias of an input), test_autograd_registration (its
autograd kernel sits at an autograd key), test_faketensor (the fake implementation gives the
real outputs' shapes, strides and dtypes) and test_aot_dispatch_dynamic (AOTAutograd with
symbolic shapes gives the eager outputs, and the eager gradients wherever the outputs require
grad: a kernel op's never do, the Function above it is the derivative). The samples cover every
kernel contract on several shapes, strides (non-contiguous inputs), strides and paddings of the
sliding windows, both dtypes, and inputs with and without requires_grad.
"""

import functools

import pytest
import torch

from simple_conv_net import checks
from simple_conv_net.backends import Ops, get_ops
from simple_conv_net.custom_ops import CONTRACTS
from simple_conv_net.window import Window

IMPLS = ("vector", "scalar")


def registered(impl):
    """{kernel name: OpOverload} of every kernel of ``impl`` that is a registered op."""
    ops = get_ops(impl)
    return {kernel.__name__: kernel.op for field in Ops._fields for kernel in getattr(ops, field).kernels
            if hasattr(kernel, "op")}


@functools.cache
def samples(dtype, requires_grad):
    """{kernel name: [argument tuples]}: every contract on a few shapes, geometries and layouts
    (built once per dtype and requires_grad; opcheck copies what it runs on)."""
    generator = torch.Generator().manual_seed(0)

    def tensor(*shape, grad=True):
        return torch.randn(shape, generator=generator, dtype=dtype).requires_grad_(requires_grad and grad)

    table = {name: [] for name in CONTRACTS}
    x = tensor(7, 6, 2, 3).permute(2, 3, 0, 1)                          # [2, 3, 7, 6], not contiguous
    w = tensor(4, 3, 3, 2)
    # (input, weight, bias, stride, padding, dilation, groups): the last two with dilation, groups and 'same'
    for x_in, weight, bias, stride, padding, dilation, groups in (
            (x, w, tensor(4), (2, 1), (1, 0), 1, 1),
            (tensor(1, 1, 5, 5), tensor(2, 1, 3, 3), None, (1, 1), (2, 2), 1, 1),
            (tensor(2, 4, 7, 6), tensor(6, 2, 3, 2), tensor(6), (1, 2), (1, 0), (2, 1), 2),
            (tensor(1, 4, 5, 6), tensor(2, 2, 2, 3), None, 1, "same", (3, 1), 2)):
        g = list(checks.conv2d_args(x_in, weight, bias, stride, padding, dilation, groups))
        table["conv2d_forward"].append((x_in, weight, bias, g))
        grad = tensor(*Window(*g).output_shape, grad=False)
        table["conv2d_backward"] += [(grad, x_in, weight, g, [True, True, bias is not None]),
                                     (grad, None, weight, g, [True, False, False]),
                                     (grad, x_in, None, g, [False, True, bias is not None])]
    # (input, kernel_size, stride, padding, dilation, ceil_mode)
    for x_in, kernel_size, stride, padding, dilation, ceil_mode in (
            (tensor(2, 2, 7, 6), 3, 2, 1, 1, False),
            (tensor(4, 4, 1, 3).permute(2, 3, 0, 1), 2, 2, 0, 1, False),
            (tensor(2, 2, 8, 7), (2, 3), 2, 1, (2, 1), True)):
        g = list(checks.max_pool2d_args(x_in, kernel_size, stride, padding, dilation, ceil_mode))
        table["max_pool2d_forward"].append((x_in, g))
        _, argmax = torch.ops.scalar_ops.max_pool2d_forward(x_in.detach(), g)
        table["max_pool2d_backward"].append((tensor(*argmax.shape, grad=False), argmax, g))
    for x_in in (tensor(3, 5), tensor(4, 3, 2).transpose(0, 2)):
        table["relu_forward"].append((x_in,))
        table["relu_backward"].append((tensor(*x_in.shape, grad=False), x_in.detach().clamp_min(0)))
    rows, weight = tensor(7, 4).t(), tensor(3, 7)                       # [4, 7], not contiguous
    table["linear_forward"] += [(rows, weight, tensor(3)), (tensor(5, 6), tensor(2, 6), None)]
    grad = tensor(4, 3, grad=False)
    table["linear_backward"] += [(grad, rows, weight, [True, True, True]), (grad, None, weight, [True, False, False]),
                                 (grad, rows, None, [False, True, False])]
    x_flat = tensor(2, 3, 4, 5)
    table["flatten_forward"] += [(x_flat, 1, 3), (x_flat, 0, 1), (tensor(2, 3, 4).transpose(1, 2), 2, 2)]
    table["flatten_backward"] += [(tensor(2, 60, grad=False), [2, 3, 4, 5]), (tensor(6, 4, 5, grad=False), [2, 3, 4, 5])]
    logits = tensor(6, 4).t()                                           # [4, 6], not contiguous
    table["log_softmax_forward"].append((logits,))
    table["log_softmax_backward"].append((tensor(4, 6, grad=False), logits.detach().log_softmax(1)))
    # nll_loss on [N, C, L]: L = 1 (the homework's [N, C]) and L = 2 with class weights and an ignored class
    for log_probs, target, weight, ignore_index in (
            (tensor(5, 4, 1), torch.tensor([[1], [0], [3], [2], [2]]), None, -100),
            (tensor(3, 4, 2), torch.tensor([[1, 0], [3, 2], [2, 2]]), torch.rand(4, generator=generator, dtype=dtype), 2)):
        for reduction in ("mean", "sum", "none"):
            table["nll_loss_forward"].append((log_probs, target, weight, ignore_index, reduction))
            grad = tensor(*target.shape, grad=False) if reduction == "none" else tensor(grad=False)
            table["nll_loss_backward"].append((grad, target, weight, list(log_probs.shape), ignore_index, reduction))
    x_bn, gamma, beta = tensor(4, 3, 5), tensor(3), tensor(3)
    for training, affine, statistics in ((True, True, True), (False, True, True), (True, False, False)):
        mean, var = (tensor(3, grad=False), torch.rand(3, generator=generator, dtype=dtype) + 0.5) if statistics \
            else (None, None)
        weights = (gamma, beta) if affine else (None, None)
        table["batch_norm_forward"].append((x_bn, mean, var, *weights, training, 0.1, 1e-5))
        _, x_hat, inv_std = get_ops("scalar").batch_norm.kernels.forward.__wrapped__(
            x_bn.detach(), None if mean is None else mean.clone(), None if var is None else var.clone(),
            *(None if t is None else t.detach() for t in weights), training, 0.1, 1e-5)
        table["batch_norm_backward"].append((tensor(4, 3, 5, grad=False), x_hat, inv_std, weights[0], training,
                                             [True, affine, affine]))
    return table


def test_every_registered_op_has_samples():
    names = {name for impl in IMPLS for name in registered(impl)}
    assert names, "no kernel op is registered: the opcheck tests would be vacuous"
    assert names <= set(CONTRACTS)
    table = samples(torch.float32, False)
    assert all(table[name] for name in names), [name for name in names if not table[name]]


def test_every_scalar_kernel_is_a_registered_op():
    """numba is opaque to dynamo: every scalar kernel must reach a compiler as an op with a fake."""
    ops = registered("scalar")
    assert set(ops) == set(CONTRACTS)
    assert all(str(op).startswith("scalar_ops.") for op in ops.values())


REGISTERED = [(impl, name) for impl in IMPLS for name in sorted(CONTRACTS) if name in registered(impl)]


@pytest.mark.parametrize("requires_grad", [False, True], ids=["no-grad", "requires-grad"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("impl,name", REGISTERED, ids=[f"{impl}::{name}" for impl, name in REGISTERED])
def test_opcheck(one_thread, impl, name, dtype, requires_grad):
    op = registered(impl)[name]
    for args in samples(dtype, requires_grad)[name]:
        result = torch.library.opcheck(op, args, raise_exception=False)
        failed = {test: error for test, error in result.items() if error != "SUCCESS"}
        assert not failed, f"{op} on {describe(args)}: {failed}"


def describe(args):
    return [f"{tuple(a.shape)}{'' if a.is_contiguous() else ' strided'}{' grad' if a.requires_grad else ''}"
            if isinstance(a, torch.Tensor) else a for a in args]


def test_outputs_never_require_grad():
    """A kernel op is not differentiable: its gradient is the Function's, one level up."""
    x = torch.randn(2, 3, requires_grad=True)
    assert not torch.ops.scalar_ops.relu_forward(x).requires_grad


def test_batch_norm_op_is_functional_and_its_caller_updates_the_statistics():
    """The op returns the new running statistics (its inputs stay as they were); under tracing, the
    function the Function calls writes them back into the module's buffers, as eager mode does in place."""
    x = torch.randn(4, 3, 5, dtype=torch.float64)
    mean, var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    *_, new_mean, new_var = torch.ops.scalar_ops.batch_norm_forward(x, mean, var, None, None, True, 0.1, 1e-5)
    assert torch.equal(mean, torch.zeros(3, dtype=torch.float64)) and torch.equal(var, torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(new_mean, 0.1 * x.mean(dim=(0, 2)))
    torch.testing.assert_close(new_var, 0.9 + 0.1 * x.var(dim=(0, 2)))
    assert torch.ops.scalar_ops.batch_norm_forward(x, mean, var, None, None, False, 0.1, 1e-5)[3:] == (None, None)

    forward = get_ops("scalar").batch_norm.kernels.forward
    traced = torch.compile(lambda x, m, v: forward(x, m, v, None, None, True, 0.1, 1e-5)[0], backend="eager",
                           fullgraph=True)
    traced(x, mean, var)
    torch.testing.assert_close(mean, new_mean)
    torch.testing.assert_close(var, new_var)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_scalar_ops_have_a_cuda_kernel_and_no_other(name):
    """The CUDA twins are registered for the CUDA dispatch key of the same ops (run under numba's
    simulator by test_scalar_cuda; a real GPU dispatch is not tested here, there is none)."""
    qualified = f"scalar_ops::{name}"
    assert torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CPU")
    assert torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CUDA")
    assert not torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "XPU")

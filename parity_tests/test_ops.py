"""Every op of every impl, forward and every gradient, against torch.nn.functional on a table of shapes."""

import importlib

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_same_gradients
from simple_conv_net.backends import NATIVE, get_ops
from simple_conv_net.functions import Kernels, conv2d_op

vector_conv2d = importlib.import_module("vector_ops.conv2d")  # the module (vector_ops.conv2d is the op)

# (N, C_in, H, W, C_out, K_h, K_w, stride, padding[, dilation, groups]); N = None: an unbatched [C_in, H, W] input
CONV_CASES = {
    "simple-net": (2, 1, 28, 28, 20, 5, 5, 1, 0),
    "non-square": (2, 2, 9, 7, 3, 3, 2, 1, 0),
    "stride2-pad1-batch1-cin3": (1, 3, 8, 8, 4, 3, 3, 2, 1),
    "stride3-pad2": (2, 3, 10, 11, 2, 4, 3, 3, 2),
    "pair-stride-padding": (2, 2, 7, 9, 3, 2, 3, (2, 1), (1, 2)),
    "kernel-equals-padded-input": (2, 2, 5, 4, 3, 7, 6, 1, 1),
    "pad2": (1, 1, 5, 5, 2, 3, 3, 1, 2),
    "1x1-kernel": (3, 4, 5, 6, 2, 1, 1, 1, 0),
    # scalar conv2d's fast path (stride 1, no padding, rows of five taps): LeNet's second conv, and channel
    # counts that leave its blocks of four channels part empty
    "lenet-conv2": (2, 20, 12, 12, 50, 5, 5, 1, 0),
    "rows-odd-channels": (3, 6, 7, 10, 7, 3, 5, 1, 0),
    # the rest of conv2d's signature: dilation, groups, 'same' and 'valid' padding, an unbatched input
    "dilation-2x3": (2, 2, 9, 10, 3, 3, 2, 1, 1, (2, 3), 1),
    "groups-2-stride-2": (2, 4, 8, 7, 6, 3, 3, 2, 1, 1, 2),
    "depthwise": (2, 3, 6, 6, 6, 3, 3, 1, 1, 1, 3),
    "same-odd-total": (2, 2, 7, 6, 3, 2, 3, 1, "same", (3, 1), 1),
    "valid-groups-dilation": (1, 4, 9, 9, 2, 3, 3, (2, 1), "valid", 2, 2),
    "unbatched": (None, 2, 6, 5, 3, 3, 3, 1, 1, 1, 1),
}

# (N, C, H, W, kernel_size, stride, padding, integer-valued input: ties[, dilation, ceil_mode]); N = None: unbatched
POOL_CASES = {
    "simple-net": (2, 3, 24, 24, 2, None, 0, False),
    "overlap": (2, 2, 7, 9, 3, 2, 1, False),
    "non-square-kernel": (1, 2, 8, 7, (3, 2), (1, 2), (1, 1), False),
    "stride3": (2, 1, 10, 10, 2, 3, 1, False),
    "kernel-equals-padded-input": (1, 2, 3, 3, 5, 1, 1, False),
    "ties": (2, 2, 8, 8, 2, 2, 0, True),
    "ties-overlap-padding": (2, 2, 7, 6, 3, 1, 1, True),
    "all-equal": (1, 1, 6, 6, 3, 2, 1, "constant"),
    # the rest of max_pool2d's signature: dilation, ceil_mode (a last window past the input's end), unbatched
    "dilation-2x3": (2, 2, 9, 10, 2, 1, 1, False, (2, 3), False),
    "ceil-mode": (2, 2, 7, 8, 3, 2, 0, False, 1, True),
    "ceil-mode-padding-dilation": (1, 2, 8, 9, (3, 2), (2, 3), (1, 1), True, (1, 2), True),
    "unbatched-ceil-mode": (None, 2, 5, 5, 2, 2, 0, False, 1, True),
}


def random(*shape, dtype, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# The oracle's own notice (native conv2d pads an even 'same' kernel through a copy): the reference says it, not the op
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")
@pytest.mark.parametrize("case", CONV_CASES.values(), ids=CONV_CASES.keys())
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
def test_conv2d(impl, dtype, device, case, bias):
    n, c_in, h, w, c_out, k_h, k_w, stride, padding, dilation, groups = (*case, 1, 1)[:11]
    x = random(*(() if n is None else (n,)), c_in, h, w, dtype=dtype, seed=1)
    weight = random(c_out, c_in // groups, k_h, k_w, dtype=dtype, seed=2)
    b = random(c_out, dtype=dtype, seed=3) if bias else None
    conv2d = get_ops(impl).conv2d
    assert_same_gradients(lambda x, w, b: conv2d(x, w, b, stride, padding, dilation, groups),
                          lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups), [x, weight, b],
                          device=device, bilinear=True)


@pytest.mark.parametrize("where", ["input", "weight"])
def test_conv2d_non_finite_values_without_padding(impl, where):
    """Without padding every impl multiplies what native PyTorch multiplies, infinite values included: scalar
    conv2d's fast path, which multiplies zeros by inputs and weights outside the true sums, is not taken then."""
    x, weight = random(2, 3, 9, 8, dtype=torch.float64, seed=1), random(4, 3, 3, 5, dtype=torch.float64, seed=2)
    (x if where == "input" else weight)[0, 1, 2, 3] = float("inf")
    conv2d = get_ops(impl).conv2d
    assert_same_gradients(conv2d, F.conv2d, [x, weight, random(4, dtype=torch.float64, seed=3)])


@pytest.mark.parametrize("padding", [0, 1])
def test_vector_ops_in_blocks_of_images(monkeypatch, padding):
    """vector conv2d and max_pool2d work a block of images at a time; with blocks of two images (conv2d's
    columns) and of six (max_pool2d's input) the batch of seven spans several, the last one short, and every
    gradient still matches."""
    monkeypatch.setattr(vector_conv2d, "block_entries", lambda: 400)
    ops = get_ops("vector")
    x, w, b = random(7, 2, 6, 5, dtype=torch.float64, seed=1), random(3, 2, 3, 2, dtype=torch.float64, seed=2), \
        random(3, dtype=torch.float64, seed=3)
    assert len(vector_conv2d.image_blocks(7, 2 * 3 * 2 * 4 * 4)) == 4 and len(vector_conv2d.image_blocks(7, 2 * 6 * 5)) == 2
    assert_same_gradients(lambda x, w, b: ops.conv2d(x, w, b, 1, padding),
                          lambda x, w, b: F.conv2d(x, w, b, 1, padding), [x, w, b])
    assert_same_gradients(lambda x: ops.max_pool2d(x, 2, 2, padding), lambda x: F.max_pool2d(x, 2, 2, padding), [x])


STRIDE_1_CASES = {name: case for name, case in CONV_CASES.items() if case[7] == 1 and len(case) == 9}


@pytest.mark.parametrize("case", STRIDE_1_CASES.values(), ids=STRIDE_1_CASES.keys())
def test_conv2d_forward_by_shifted_rows(monkeypatch, case):
    """vector conv2d's second forward method (shifted rows: stride 1, from 8 images on) on every stride-1
    case, whatever the rule would pick: on a non-contiguous input with an infinite value (it lands only in
    the cropped entries of some outputs), in blocks of about two images, with and without bias."""
    n, c_in, h, w, c_out, k_h, k_w, _, padding = case
    monkeypatch.setattr(vector_conv2d, "block_entries", lambda: 2 * c_in * k_w * (h + 2 * padding) * (w + 2 * padding))
    x = random(w, c_in, h, 2 * n + 1, dtype=torch.float64, seed=1).permute(3, 1, 2, 0)  # [2n + 1, C_in, H, W]
    x[0, 0, min(1, h - 1), 0] = float("inf")
    weight = random(c_out, c_in, k_h, k_w, dtype=torch.float64, seed=2)
    g = vector_conv2d.Window.of(x.shape, c_out, (k_h, k_w), (1, 1), (padding, padding))
    for bias in (random(c_out, dtype=torch.float64, seed=3), None):
        torch.testing.assert_close(vector_conv2d.shifted_rows_forward(x, weight, bias, g),
                                   F.conv2d(x, weight, bias, 1, padding), equal_nan=True)


@pytest.mark.parametrize("wanted", [(False, True, False), (True, False, False), (False, False, True)],
                         ids=["weight", "input", "bias"])
def test_conv2d_computes_only_the_gradients_asked_for(impl, wanted):
    """ctx.needs_input_grad reaches the backward kernel, which returns None for what is not needed."""
    seen = []
    original = get_ops(impl).conv2d.kernels

    def backward(*args):
        seen.append(args[-1])
        return original.backward(*args)

    conv2d = conv2d_op(Kernels(original.forward, backward))
    x, w, b = (random(*shape, dtype=torch.float64, seed=i) for i, shape in enumerate([(2, 2, 6, 6), (3, 2, 3, 3), (3,)]))
    for tensor, needed in zip((x, w, b), wanted):
        tensor.requires_grad_(needed)
    out = conv2d(x, w, b)
    leaf = [t for t in (x, w, b) if t.requires_grad]
    (grad,) = torch.autograd.grad(out.sum(), leaf)
    (ref,) = torch.autograd.grad(F.conv2d(x, w, b).sum(), leaf)
    torch.testing.assert_close(grad, ref)
    assert seen == [wanted]


@pytest.mark.parametrize("case", POOL_CASES.values(), ids=POOL_CASES.keys())
def test_max_pool2d(impl, dtype, device, case):
    n, c, h, w, kernel_size, stride, padding, ties, dilation, ceil_mode = (*case, 1, False)[:10]
    shape = (*(() if n is None else (n,)), c, h, w)
    if ties == "constant":
        x = torch.full(shape, 0.5, dtype=dtype)
    elif ties:
        x = torch.randint(0, 3, shape, generator=torch.Generator().manual_seed(4)).to(dtype)
    else:
        x = random(*shape, dtype=dtype)
    max_pool2d = get_ops(impl).max_pool2d
    assert_same_gradients(lambda x: max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode),
                          lambda x: F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode), [x],
                          device=device)
    ours = max_pool2d(x.to(device), kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
    native = F.max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
    assert torch.equal(ours[1].cpu(), native[1]) and not ours[1].requires_grad, "indices as torch returns them"


def test_max_pool2d_returns_indices_that_are_not_differentiable(impl):
    """return_indices=True: (output, indices), the output differentiable as without indices, the indices not;
    passed positionally as torch.nn.functional takes them too."""
    x = random(2, 3, 6, 6, dtype=torch.float64).requires_grad_()
    output, indices = get_ops(impl).max_pool2d(x, 3, 2, 1, 1, False, True)
    native_output, native_indices = F.max_pool2d(x, 3, 2, 1, 1, False, True)
    assert torch.equal(indices, native_indices) and indices.dtype == torch.int64 and indices.grad_fn is None
    torch.testing.assert_close(torch.autograd.grad(output.sum(), x)[0], torch.autograd.grad(native_output.sum(), x)[0])


def test_max_pool2d_indices_cost_the_backward_nothing(impl, monkeypatch):
    """The Function returns the indices beside the output (return_indices), non-differentiable: the backward
    gets no gradient for them, where autograd would by default fill a tensor of zeros their size at each call."""
    from simple_conv_net import functions

    seen = []
    backward = functions.MaxPool2d.backward
    monkeypatch.setattr(functions.MaxPool2d, "backward",
                        staticmethod(lambda ctx, grad, grad_indices: seen.append(grad_indices) or backward(ctx, grad,
                                                                                                        grad_indices)))
    x = random(2, 3, 6, 6, dtype=torch.float64).requires_grad_()
    get_ops(impl).max_pool2d(x, 2).sum().backward()
    assert seen == [None] and x.grad is not None


def test_max_pool2d_stride_defaults_to_kernel(impl):
    x = random(1, 2, 6, 6, dtype=torch.float64)
    torch.testing.assert_close(get_ops(impl).max_pool2d(x, 3), F.max_pool2d(x, 3))


@pytest.mark.parametrize("shape", [(4, 7), (2, 3, 5, 5), (1,)])
def test_relu(impl, dtype, device, shape):
    x = random(*shape, dtype=dtype)
    x.view(-1)[0] = 0.0  # the kink: gradient 0 there, as PyTorch
    assert_same_gradients(get_ops(impl).relu, F.relu, [x], device=device)


def test_relu_inplace(impl):
    """inplace=True writes into its input and returns it, differentiably, as F.relu does; on a leaf that requires
    grad it is refused, as F.relu refuses it."""
    x = random(3, 5, dtype=torch.float64)
    assert_same_gradients(lambda x: get_ops(impl).relu(x * 1.0, inplace=True), lambda x: F.relu(x * 1.0, inplace=True),
                          [x])
    y = x * 1.0
    assert get_ops(impl).relu(y, True) is y and torch.equal(y, F.relu(x))
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        get_ops(impl).relu(x.clone().requires_grad_(), inplace=True)


@pytest.mark.parametrize("shape,out_features,bias", [
    ((4, 7), 3, True), ((3, 2880), 500, True), ((2, 3, 5), 4, True), ((5, 6), 2, False), ((6,), 3, True),
])
def test_linear(impl, dtype, device, shape, out_features, bias):
    x = random(*shape, dtype=dtype)
    weight = random(out_features, shape[-1], dtype=dtype, seed=1)
    b = random(out_features, dtype=dtype, seed=2) if bias else None
    assert_same_gradients(get_ops(impl).linear, F.linear, [x, weight, b], device=device, bilinear=True)


def test_linear_in_tiles_of_samples(impl):
    """Scalar linear takes samples a tile at a time (as many as 2**18 input values hold: four here, for
    D = 2**16), so nine samples span three tiles, the last one a single left-over sample."""
    x, w, b = random(9, 2**16, dtype=torch.float64, seed=1), random(5, 2**16, dtype=torch.float64, seed=2), \
        random(5, dtype=torch.float64, seed=3)
    assert_same_gradients(get_ops(impl).linear, F.linear, [x, w, b], bilinear=True)


@pytest.mark.parametrize("shape,start,end", [((2, 3, 4, 5), 1, -1), ((2, 3, 4, 5), 0, 2), ((2, 3, 4), 2, 2),
                                             ((2, 3, 4, 5), -3, -2)])
def test_flatten(impl, dtype, shape, start, end):
    assert_same_gradients(lambda x: get_ops(impl).flatten(x, start, end),
                          lambda x: torch.flatten(x, start, end), [random(*shape, dtype=dtype)])


def test_flatten_defaults_are_torch_flattens(impl):
    """flatten(x) merges every dim, as torch.flatten (start_dim=0); a 0-D tensor gives [1]. Layers flatten each
    sample with start_dim=1."""
    x = random(2, 3, 4, 5, dtype=torch.float32)
    assert get_ops(impl).flatten(x).shape == NATIVE.flatten(x).shape == torch.flatten(x).shape == (120,)
    assert get_ops(impl).flatten(torch.tensor(2.0)).shape == torch.flatten(torch.tensor(2.0)).shape == (1,)
    assert get_ops(impl).flatten(x, 1).shape == (2, 60)


@pytest.mark.parametrize("shape,dim,offset,cast", [((4, 10), 1, 0.0, None), ((3, 4, 5), 0, 0.0, None),
                                                   ((3, 4, 5), -1, 0.0, None), ((2, 6), 1, 1000.0, None),
                                                   ((1, 1), 1, 0.0, None), ((3, 4), 1, 0.0, torch.float64),
                                                   ((3, 4, 2), 0, 0.0, torch.float64)])
def test_log_softmax(impl, dtype, device, shape, dim, offset, cast):
    """``dtype`` (cast): the input is cast first; the output has that dtype, the gradient the input's (cast up
    to float64, as op_db's samples do)."""
    x = random(*shape, dtype=dtype) * 5 + offset  # offset 1000: exp would overflow without the max shift
    assert_same_gradients(lambda x: get_ops(impl).log_softmax(x, dim, dtype=cast),
                          lambda x: F.log_softmax(x, dim, dtype=cast), [x], device=device)


@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 3, 4), (2, 3, 4, 5)])
def test_log_softmax_implicit_dim_is_torch_nn_functionals(impl, shape):
    """dim=None picks F.log_softmax's dimension (0 for 0-, 1- and 3-D inputs, else 1), with its warning."""
    x = random(*shape, dtype=torch.float64)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        ours = get_ops(impl).log_softmax(x)
    with pytest.warns(UserWarning, match="Implicit dimension choice"):
        torch.testing.assert_close(ours, F.log_softmax(x))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5, 10), (1, 3), (4,), (3, 4, 2, 3)], ids=["N-C", "N1", "C", "N-C-d1-d2"])
@pytest.mark.parametrize("weighted,ignore_index", [(False, -100), (True, 2), (True, -100)],
                         ids=["plain", "weight-ignore", "weight"])
def test_nll_loss(impl, dtype, device, reduction, shape, weighted, ignore_index):
    """[N, C], [C] and K-dimensional inputs, with class weights (the weighted mean) and an ignored class."""
    logp = F.log_softmax(random(*shape, dtype=dtype), dim=0 if len(shape) == 1 else 1)
    classes = shape[0] if len(shape) == 1 else shape[1]
    target = torch.randint(0, classes, shape[:1] + shape[2:] if len(shape) > 1 else (),
                           generator=torch.Generator().manual_seed(5))
    weight = random(classes, dtype=dtype, seed=6).abs() + 0.5 if weighted else None

    def loss(ops, weight):
        return lambda x, t: ops.nll_loss(x, t, weight, ignore_index=ignore_index, reduction=reduction)

    assert_same_gradients(loss(get_ops(impl), None if weight is None else weight.to(device)), loss(F, weight),
                          [logp, target], device=device, truth_fn=loss(F, None if weight is None else weight.double()))


def test_nll_loss_legacy_reduction_arguments(impl):
    """size_average and reduce, torch.nn.functional's deprecated spelling of reduction, mean what they mean there."""
    logp, target = F.log_softmax(random(4, 3, dtype=torch.float64), 1), torch.tensor([0, 2, 1, 2])
    for legacy in (dict(size_average=False), dict(reduce=False), dict(size_average=True, reduce=True)):
        with pytest.warns(UserWarning, match="size_average and reduce"):
            ours = get_ops(impl).nll_loss(logp, target, **legacy)
        with pytest.warns(UserWarning, match="size_average and reduce"):
            torch.testing.assert_close(ours, F.nll_loss(logp, target, **legacy))


def test_float32_stays_float32(impl):
    ops = get_ops(impl)
    x = random(2, 1, 8, 8, dtype=torch.float32).requires_grad_()
    w = random(3, 1, 3, 3, dtype=torch.float32, seed=1).requires_grad_()
    y = ops.log_softmax(ops.linear(ops.relu(ops.flatten(ops.max_pool2d(ops.conv2d(x, w), 2), 1)),
                                   random(4, 27, dtype=torch.float32, seed=2)), 1)
    loss = ops.nll_loss(y, torch.tensor([1, 3]))
    loss.backward()
    assert {y.dtype, loss.dtype, x.grad.dtype, w.grad.dtype} == {torch.float32}


def test_relu_special_values(impl):
    """NaN and infinities through ReLU and its backward as in PyTorch (inf * 0 must not make a NaN)."""
    inf, nan = float("inf"), float("nan")
    x = torch.tensor([-2.0, 0.0, 3.0, nan, inf, -inf], dtype=torch.float64)
    grad = torch.tensor([inf, -inf, 2.0, 5.0, nan, inf], dtype=torch.float64)
    ours, native = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, y_ref = get_ops(impl).relu(ours), F.relu(native)
    torch.testing.assert_close(y, y_ref, equal_nan=True)
    y.backward(grad)
    y_ref.backward(grad)
    torch.testing.assert_close(ours.grad, native.grad, equal_nan=True)


INF, NAN = float("inf"), float("nan")
POOL_SPECIAL_CASES = {
    # a window whose maximum is -inf and that touches the padding: its first element inside the image wins
    "-inf-window-by-padding": ([[1.0, 2, 3, 4], [-INF, -INF, 5, 6], [-INF, -INF, 7, 8]], 3, 2, 1),
    "-inf-corner-by-padding": ([[-INF, 2.0], [3.0, 4.0]], 2, 1, 1),
    "two-nans-in-a-window": ([[NAN, 2.0], [3.0, NAN]], 2, 2, 0),   # the last NaN in window order wins
    "nan-and-ties": ([[1.0, NAN, 1.0], [NAN, 1.0, 1.0], [1.0, 1.0, 1.0]], 2, 1, 1),
}


@pytest.mark.parametrize("case", POOL_SPECIAL_CASES.values(), ids=POOL_SPECIAL_CASES.keys())
def test_max_pool2d_sends_the_gradient_where_torch_does(impl, case):
    """Infinities, NaNs and padding in one window: value and gradient element as PyTorch's kernels pick them."""
    plane, kernel_size, stride, padding = case
    x = torch.tensor([[plane]], dtype=torch.float64)
    assert_same_gradients(lambda x: get_ops(impl).max_pool2d(x, kernel_size, stride, padding),
                          lambda x: F.max_pool2d(x, kernel_size, stride, padding), [x])


def test_max_pool2d_of_an_empty_batch(impl):
    x = torch.zeros(0, 2, 4, 4, requires_grad=True)
    y = get_ops(impl).max_pool2d(x, 2)
    y.sum().backward()
    assert y.shape == (0, 2, 2, 2) and x.grad.shape == x.shape


SECOND_DERIVATIVES = {
    "relu": lambda ops, x: ops.relu(x),
    "conv2d": lambda ops, x: ops.conv2d(x, torch.ones(2, 1, 2, 2, dtype=x.dtype)),
    "max_pool2d": lambda ops, x: ops.max_pool2d(x, 2),
    "linear": lambda ops, x: ops.linear(x, torch.ones(3, 4, dtype=x.dtype)),
    "flatten": lambda ops, x: ops.flatten(x, 1),
    "log_softmax": lambda ops, x: ops.log_softmax(x, 1),
    "nll_loss": lambda ops, x: ops.nll_loss(x.reshape(4, 4), torch.zeros(4, dtype=torch.int64)),
    "batch_norm": lambda ops, x: ops.batch_norm(x, None, None, training=True),
}


@pytest.mark.parametrize("op", SECOND_DERIVATIVES)
def test_a_second_derivative_is_refused_with_a_message(impl, op):
    """create_graph=True through any op: a message naming the op and what to use, not a failure elsewhere."""
    x = random(1, 1, 4, 4, dtype=torch.float64).requires_grad_()
    y = SECOND_DERIVATIVES[op](get_ops(impl), x)
    with pytest.raises(RuntimeError, match=rf"{impl}_ops\.{op}: the custom ops are differentiable once.*impl='torch'"):
        torch.autograd.grad((y * y).sum(), x, create_graph=True)
    (first,) = torch.autograd.grad((y * y).sum(), x)      # without create_graph: the first derivative as ever
    assert first.shape == x.shape

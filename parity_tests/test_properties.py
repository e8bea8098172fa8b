"""Property tests: every op of both impls against native PyTorch over random shapes, strides, paddings and the
rest of each signature (conv2d's dilation, groups and 'same' padding; max_pool2d's dilation, ceil_mode and
indices; nll_loss's weight, ignore_index and K-dimensional inputs; batch_norm's momenta), filled with normal
values, ties (small integers, exact zeros among them) and the special values NaN, +inf and -inf, drawn
together, in forward and backward.

Quick by default (25 examples per property); ``pytest --hypothesis-profile=thorough`` runs 500.

Infinite and NaN values go into the data an op reads (the input, the log-probabilities), never into
its weights: scalar conv2d skips the terms that read padding where native PyTorch multiplies zero by
the weight, which differs only for an infinite or NaN weight (0 * inf is NaN; see scalar_ops/conv2d.py).
"""

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_close, assert_same_gradients
from simple_conv_net.backends import get_ops

SPECIAL = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}
DTYPES = st.sampled_from([torch.float32, torch.float64])


@st.composite
def fills(draw):
    """How to fill a tensor: normal or tied (integers 0..2) values, then a share of special values."""
    return dict(seed=draw(st.integers(0, 2**16)), ties=draw(st.booleans()),
                specials=draw(st.lists(st.sampled_from(sorted(SPECIAL)), max_size=3, unique=True)),
                rate=draw(st.sampled_from([0.05, 0.3, 1.0])))


def filled(shape, dtype, fill):
    g = torch.Generator().manual_seed(fill["seed"])
    x = (torch.randint(0, 3, shape, generator=g).to(dtype) if fill["ties"]
         else torch.randn(*shape, generator=g, dtype=dtype))
    for name in fill["specials"]:
        x[torch.rand(shape, generator=g) < fill["rate"] / len(fill["specials"])] = SPECIAL[name]
    return x


def normal(*shape, dtype, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@st.composite
def conv_cases(draw):
    k_h, k_w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    d_h, d_w = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    if stride == (1, 1) and draw(st.booleans()):
        padding, (p_h, p_w) = "same", (0, 0)                   # d*(K - 1) in all: every input size fits
    else:
        p_h, p_w = draw(st.integers(0, 2)), draw(st.integers(0, 2))
        padding = (p_h, p_w)
    h = draw(st.integers(max(1, d_h * (k_h - 1) + 1 - 2 * p_h), 9))
    w = draw(st.integers(max(1, d_w * (k_w - 1) + 1 - 2 * p_w), 9))
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    return dict(n=draw(st.integers(1, 3)), c_in=groups * draw(st.integers(1, 2)),
                c_out=groups * draw(st.integers(1, 2)), h=h, w=w, kernel=(k_h, k_w), stride=stride, padding=padding,
                dilation=(d_h, d_w), groups=groups, bias=draw(st.booleans()), fill=draw(fills()), dtype=draw(DTYPES))


@st.composite
def conv_rows_cases(draw):
    """The shapes of scalar conv2d's fast path (stride 1, no padding, kernel rows of five taps), with channel
    counts that leave the blocks of four part empty."""
    k_h = draw(st.integers(1, 5))
    return dict(n=draw(st.integers(1, 3)), c_in=draw(st.integers(1, 6)), c_out=draw(st.integers(1, 9)),
                h=draw(st.integers(k_h, 9)), w=draw(st.integers(5, 11)), kernel=(k_h, 5), stride=(1, 1),
                padding=(0, 0), dilation=(1, 1), groups=1, bias=draw(st.booleans()), fill=draw(fills()),
                dtype=draw(DTYPES))


@st.composite
def pool_cases(draw):
    """Sizes that give every window an input element (the first window starts p before the input; its first tap
    inside is at d - p < size): ceil_mode may let the last window run past the input's end."""
    k_h, k_w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    p_h, p_w = draw(st.integers(0, k_h // 2)), draw(st.integers(0, k_w // 2))
    d_h, d_w = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    return dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 3)),
                h=draw(st.integers(max(1, d_h * (k_h - 1) + 1 - 2 * p_h, d_h), 9)),
                w=draw(st.integers(max(1, d_w * (k_w - 1) + 1 - 2 * p_w, d_w), 9)),
                kernel=(k_h, k_w), stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding=(p_h, p_w),
                dilation=(d_h, d_w), ceil_mode=draw(st.booleans()), fill=draw(fills()), dtype=draw(DTYPES))


@st.composite
def matrix_cases(draw):
    """A [rows, columns] input (rows may be 1), a fill and a dtype: relu, linear, log_softmax, nll_loss."""
    return dict(shape=(draw(st.integers(1, 5)), draw(st.integers(1, 7))), out=draw(st.integers(1, 4)),
                fill=draw(fills()), dtype=draw(DTYPES), bias=draw(st.booleans()))


@st.composite
def batch_norm_cases(draw):
    """At least 3 values per channel: with M = 2, training mode's input gradient is zero up to eps (the
    projection g - mean(g) - x_hat mean(g x_hat) removes both dimensions), so every float32 digit of it
    is rounding noise and no float32 computation is closer to the truth than another."""
    shape = (draw(st.integers(3, 4)), draw(st.integers(1, 3)), *draw(st.lists(st.integers(1, 3), max_size=2)))
    return dict(shape=tuple(shape), fill=draw(fills()), dtype=draw(DTYPES), training=draw(st.booleans()),
                affine=draw(st.booleans()), momentum=draw(st.sampled_from([0.1, 0.0, 1.0, -0.5, 1.5])))


@given(case=st.one_of(conv_cases(), conv_rows_cases()))
def test_conv2d_property(impl, case):
    dtype = case["dtype"]
    x = filled((case["n"], case["c_in"], case["h"], case["w"]), dtype, case["fill"])
    weight = normal(case["c_out"], case["c_in"] // case["groups"], *case["kernel"], dtype=dtype, seed=1)
    bias = normal(case["c_out"], dtype=dtype, seed=2) if case["bias"] else None
    options = {key: case[key] for key in ("stride", "padding", "dilation", "groups")}
    conv2d = get_ops(impl).conv2d
    assert_same_gradients(lambda x, w, b: conv2d(x, w, b, **options), lambda x, w, b: F.conv2d(x, w, b, **options),
                          [x, weight, bias], bilinear=True)


@given(case=pool_cases())
def test_max_pool2d_property(impl, case):
    x = filled((case["n"], case["c"], case["h"], case["w"]), case["dtype"], case["fill"])
    options = {key: case[key] for key in ("stride", "padding", "dilation", "ceil_mode")}
    max_pool2d = get_ops(impl).max_pool2d
    assert_same_gradients(lambda x: max_pool2d(x, case["kernel"], **options),
                          lambda x: F.max_pool2d(x, case["kernel"], **options), [x])
    _, indices = max_pool2d(x, case["kernel"], **options, return_indices=True)
    assert torch.equal(indices, F.max_pool2d(x, case["kernel"], **options, return_indices=True)[1])


@given(case=matrix_cases())
def test_relu_property(impl, case):
    assert_same_gradients(get_ops(impl).relu, F.relu, [filled(case["shape"], case["dtype"], case["fill"])])


@given(case=matrix_cases())
def test_linear_property(impl, case):
    x = filled(case["shape"], case["dtype"], case["fill"])
    weight = normal(case["out"], case["shape"][1], dtype=case["dtype"], seed=1)
    bias = normal(case["out"], dtype=case["dtype"], seed=2) if case["bias"] else None
    assert_same_gradients(get_ops(impl).linear, F.linear, [x, weight, bias], bilinear=True)


@given(case=matrix_cases())
def test_log_softmax_property(impl, case):
    assert_same_gradients(lambda x: get_ops(impl).log_softmax(x, 1), lambda x: F.log_softmax(x, 1),
                          [filled(case["shape"], case["dtype"], case["fill"])])


@given(case=matrix_cases(), reduction=st.sampled_from(["mean", "sum", "none"]),
       positions=st.lists(st.integers(1, 3), max_size=2), weighted=st.booleans(),
       ignore_index=st.sampled_from([-100, 0, 1]))
def test_nll_loss_property(impl, case, reduction, positions, weighted, ignore_index):
    """[N, C] and K-dimensional [N, C, d1, ...] inputs, with class weights and an ignored class."""
    (n, c), dtype = case["shape"], case["dtype"]
    x = filled((n, c, *positions), dtype, case["fill"])
    target = torch.randint(0, c, (n, *positions), generator=torch.Generator().manual_seed(3))
    weight = normal(c, dtype=dtype, seed=4).abs() + 0.1 if weighted else None

    def loss(ops, weight):
        return lambda x, t: ops.nll_loss(x, t, weight, ignore_index=ignore_index, reduction=reduction)

    assert_same_gradients(loss(get_ops(impl), weight), loss(F, weight), [x, target],
                          truth_fn=loss(F, None if weight is None else weight.double()))


@given(case=pool_cases())
def test_flatten_property(impl, case):
    x = filled((case["n"], case["c"], case["h"], case["w"]), case["dtype"], case["fill"])
    assert_same_gradients(lambda x: get_ops(impl).flatten(x, 1), lambda x: torch.flatten(x, 1), [x])


@given(case=batch_norm_cases())
def test_batch_norm_property(impl, case):
    dtype, channels = case["dtype"], case["shape"][1]
    x = filled(case["shape"], dtype, case["fill"])
    weight = normal(channels, dtype=dtype, seed=1) if case["affine"] else None
    bias = normal(channels, dtype=dtype, seed=2) if case["affine"] else None
    stats = {key: (normal(channels, dtype=torch.float64, seed=3), normal(channels, dtype=torch.float64, seed=4).abs())
             for key in ("ours", "native", "truth")}
    ours, native, truth = ([t.to(dtype if key != "truth" else torch.float64) for t in stats[key]]
                           for key in ("ours", "native", "truth"))
    training, momentum = case["training"], case["momentum"]
    assert_same_gradients(lambda x, w, b: get_ops(impl).batch_norm(x, *ours, w, b, training, momentum, 1e-5),
                          lambda x, w, b: F.batch_norm(x, *native, w, b, training, momentum, 1e-5), [x, weight, bias],
                          truth_fn=lambda x, w, b: F.batch_norm(x, *truth, w, b, training, momentum, 1e-5))
    for statistic, true in zip(ours, truth):                 # moved by the same momentum, in place
        assert_close("running statistic", true, statistic, dtype=dtype)

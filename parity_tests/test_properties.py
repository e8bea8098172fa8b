"""Property tests: conv2d and max_pool2d against native PyTorch over random shapes, strides and paddings.

Quick by default; ``pytest --hypothesis-profile=thorough`` runs 500 examples per property.
"""

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from conftest import assert_same_gradients
from simple_conv_net.backends import get_ops


@st.composite
def conv_cases(draw):
    k_h, k_w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    p_h, p_w = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, k_h - 2 * p_h), 9))
    w = draw(st.integers(max(1, k_w - 2 * p_w), 9))
    return dict(n=draw(st.integers(1, 3)), c_in=draw(st.integers(1, 3)), c_out=draw(st.integers(1, 3)),
                h=h, w=w, kernel=(k_h, k_w), stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))),
                padding=(p_h, p_w), bias=draw(st.booleans()), seed=draw(st.integers(0, 2**16)),
                dtype=draw(st.sampled_from([torch.float32, torch.float64])))


@st.composite
def pool_cases(draw):
    k_h, k_w = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    p_h, p_w = draw(st.integers(0, k_h // 2)), draw(st.integers(0, k_w // 2))
    return dict(n=draw(st.integers(1, 3)), c=draw(st.integers(1, 3)),
                h=draw(st.integers(max(1, k_h - 2 * p_h), 9)), w=draw(st.integers(max(1, k_w - 2 * p_w), 9)),
                kernel=(k_h, k_w), stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), padding=(p_h, p_w),
                ties=draw(st.booleans()), seed=draw(st.integers(0, 2**16)),
                dtype=draw(st.sampled_from([torch.float32, torch.float64])))


def _check_conv(impl, case):
    g = torch.Generator().manual_seed(case["seed"])
    x = torch.randn(case["n"], case["c_in"], case["h"], case["w"], generator=g, dtype=case["dtype"])
    weight = torch.randn(case["c_out"], case["c_in"], *case["kernel"], generator=g, dtype=case["dtype"])
    bias = torch.randn(case["c_out"], generator=g, dtype=case["dtype"]) if case["bias"] else None
    stride, padding, conv2d = case["stride"], case["padding"], get_ops(impl).conv2d
    assert_same_gradients(lambda x, w, b: conv2d(x, w, b, stride, padding),
                          lambda x, w, b: F.conv2d(x, w, b, stride, padding), [x, weight, bias])


def _check_pool(impl, case):
    g = torch.Generator().manual_seed(case["seed"])
    shape = (case["n"], case["c"], case["h"], case["w"])
    x = (torch.randint(0, 3, shape, generator=g).to(case["dtype"]) if case["ties"]
         else torch.randn(*shape, generator=g, dtype=case["dtype"]))
    kernel, stride, padding, max_pool2d = case["kernel"], case["stride"], case["padding"], get_ops(impl).max_pool2d
    assert_same_gradients(lambda x: max_pool2d(x, kernel, stride, padding),
                          lambda x: F.max_pool2d(x, kernel, stride, padding), [x])


@given(case=conv_cases())
def test_conv2d_property(impl, case):
    _check_conv(impl, case)


@given(case=pool_cases())
def test_max_pool2d_property(impl, case):
    _check_pool(impl, case)

"""Known answers from the handouts, through every impl (native torch as the cross-check).

* Seed 003 section 3: the 4x4 toy CNN, forward and backward by hand, and one SGD step.
* Seed 001 question 3: the input gradient of a convolution is a convolution of the zero-padded
  output gradient with the flipped, channel-swapped kernels (2-D, and the handout's 1-D example).
"""

import pytest
import torch

from conftest import CUSTOM_IMPLS, assert_close
from simple_conv_net.backends import get_ops

# ---------------------------------------------------------------------------------------------
# Seed 003 section 3: the toy CNN
#
#   input 4x4x1 -> conv k=2 s=1 p=0 n=2 -> max pool k=2 s=1 -> IP n=3 -> ReLU -> softmax -> NLL
#
# (the handout's layer order: no IP after the ReLU). Convolution as in the handout's Fig. 2 and
# torch: the filter slides over the input unflipped (cross-correlation). Indices in comments are
# the handout's 1-based (i, j, k) = (row, column, channel).
# ---------------------------------------------------------------------------------------------

IMAGE = [[0, 0, 4, 0],      # the digit 1; label "1" of digits (0, 1, 2): class index 1 (0-based)
         [0, 2, 5, 0],
         [0, 0, 1, 0],
         [0, 0, 2, 0]]
LABEL = 1
FILTER1 = [[1, 1],
           [2, 0]]
FILTER2 = [[2, 1],
           [0, 2]]
W1 = [[1.00, 0.5, 1, 2, -1.0, 1.0, 1, -1],
      [0.50, 1.0, 2, 1, -0.5, 0.5, -1, 1],
      [0.25, -1.0, 1, 1, 0.5, -1.0, -1, -1]]
# b is zero (the handout prints four zeros for an IP layer of n = 3: three are used).
LR = 0.01

# --- forward, by hand ------------------------------------------------------------------------
# conv(i, j, 1) = X(i,j)*1 + X(i,j+1)*1 + X(i+1,j)*2 + X(i+1,j+1)*0
#   (1,1): 0+0+2*0 = 0   (1,2): 0+4+2*2 = 8   (1,3): 4+0+2*5 = 14
#   (2,1): 0+2+2*0 = 2   (2,2): 2+5+2*0 = 7   (2,3): 5+0+2*1 = 7
#   (3,1): 0+0+2*0 = 0   (3,2): 0+1+2*0 = 1   (3,3): 1+0+2*2 = 5
# conv(i, j, 2) = X(i,j)*2 + X(i,j+1)*1 + X(i+1,j)*0 + X(i+1,j+1)*2
#   (1,1): 0+0+2*2 = 4   (1,2): 0+4+2*5 = 14  (1,3): 2*4+0+2*0 = 8
#   (2,1): 0+2+2*0 = 2   (2,2): 2*2+5+2*1 = 11 (2,3): 2*5+0+2*0 = 10
#   (3,1): 0+0+2*0 = 0   (3,2): 0+1+2*2 = 5   (3,3): 2*1+0+2*0 = 2
CONV = [[[0, 8, 14], [2, 7, 7], [0, 1, 5]],
        [[4, 14, 8], [2, 11, 10], [0, 5, 2]]]
CONV_1_1_2 = 4                      # question 5: conv output (1,1,2)
# max pool 2x2, stride 1: each 2x2 window of the 3x3 maps
#   channel 1: max(0,8,2,7) = 8    max(8,14,7,7) = 14    max(2,7,0,1) = 7    max(7,7,1,5) = 7
#   channel 2: max(4,14,2,11) = 14  max(14,8,11,10) = 14  max(2,11,0,5) = 11  max(11,10,5,2) = 11
POOL = [[[8, 14], [7, 7]],
        [[14, 14], [11, 11]]]
POOL_2_1_1 = 7                      # question 6: max-pool output (2,1,1)
# IP input v: (i, j, k) -> (i-1)*COLS + j + (k-1)*ROWS*COLS with ROWS = COLS = 2
VECTOR = [8, 14, 7, 7, 14, 14, 11, 11]
# IP (b = 0): z = W1 v
#   z1 = 1*8 + 0.5*14 + 1*7 + 2*7 - 1*14 + 1*14 + 1*11 - 1*11 = 8+7+7+14 +0 +0 = 36
#   z2 = 0.5*8 + 1*14 + 2*7 + 1*7 - 0.5*14 + 0.5*14 - 1*11 + 1*11 = 4+14+14+7 +0 +0 = 39
#   z3 = 0.25*8 - 1*14 + 1*7 + 1*7 + 0.5*14 - 1*14 - 1*11 - 1*11 = 2-14+7+7+7-14-11-11 = -27
IP = [36, 39, -27]
RELU = [36, 39, 0]
RELU_2 = 39                         # question 7
# softmax of (36, 39, 0): divide by e^39, D = 1 + e^-3 + e^-39 = 1.049787068367864 (e^-3 = 0.0497870683678639)
#   p1 = e^-3 / D = 0.04742587317756678,  p2 = 1 / D = 0.9525741268224333,  p3 = e^-39 / D = 1.1000539557960228e-17
P1, P2, P3 = 0.04742587317756678, 0.9525741268224333, 1.1000539557960228e-17
SOFTMAX = [P1, P2, P3]
SOFTMAX_2 = P2                      # question 8
LOSS = 0.04858735157374207          # question 9: -ln p2 = ln D = ln(1.049787068367864)

# --- backward, by hand -----------------------------------------------------------------------
# question 10: dJ/dy (y = softmax output) = -1/p_label at the label, 0 elsewhere: -1/p2 = -D
DJ_DY = [0, -1.049787068367864, 0]
# through the softmax: dJ/d(ReLU output) = p - onehot = (p1, p2 - 1, p3) = (p1, -p1 - p3, p3)
DJ_DRELU = [P1, P2 - 1, P3]
# through the ReLU (z3 = -27 < 0 blocks): dJ/dz = (p1, p2 - 1, 0)
DJ_DIP = [P1, P2 - 1, 0]
# question 11: dJ/dW1(1,1) = dJ/dz1 * v1 = 8 p1
DJ_DW1_11 = 0.37940698542053425
# dJ/dv = W1^T dJ/dz = p1 (W1 row 1 - W1 row 2) - p3 (W1 row 2)       [p2 - 1 = -p1 - p3]
#   = p1 (0.5, -0.5, -1, 1, -0.5, 0.5, 2, -2) + O(1e-17)
# so dJ/dpool, channel 1 = p1 [[0.5, -0.5], [-1, 1]], channel 2 = p1 [[-0.5, 0.5], [2, -2]].
# Max pool sends each to its window's max. Channel 1: (1,1) -> conv(1,2), (1,2) -> conv(1,3),
# (2,1) -> conv(2,2), and (2,2) is a TIE, conv(2,2) = conv(2,3) = 7: it goes to the first in scan
# order, conv(2,2) (torch's rule, and the impls'). So dJ/dconv channel 1 is
#   (1,2): 0.5 p1,  (1,3): -0.5 p1,  (2,2): -p1 + p1 = 0,  0 elsewhere.
# Channel 2: (1,1) and (1,2) -> conv(1,2): -0.5 p1 + 0.5 p1 = 0; (2,1), (2,2) -> conv(2,2): 2 p1 - 2 p1 = 0.
# dJ/dF1(a,b) = sum_(i,j) dJ/dconv(i,j,1) X(i+a-1, j+b-1):
#   F1(1,1): 0.5 p1 X(1,2) - 0.5 p1 X(1,3) = 0.5 p1 * 0 - 0.5 p1 * 4 = -2 p1     (question 12)
#   F1(1,2): 0.5 p1 X(1,3) - 0.5 p1 X(1,4) = 2 p1 - 0 = 2 p1
#   F1(2,1): 0.5 p1 X(2,2) - 0.5 p1 X(2,3) = p1 - 2.5 p1 = -1.5 p1
#   F1(2,2): 0.5 p1 X(2,3) - 0.5 p1 X(2,4) = 2.5 p1
# dJ/dF2 = 0 and dJ/dbias = (0, 0) (the conv deltas sum to zero per channel).
# (Had the tie gone to conv(2,3), dJ/dF1(1,1) would be -2 p1 - p1 X(2,2) + p1 X(2,3) = +p1.)
DJ_DF1_11 = -0.09485174635513356    # -2 p1
DJ_DFILTERS = [[[-2 * P1, 2 * P1], [-1.5 * P1, 2.5 * P1]],
               [[0, 0], [0, 0]]]
# dJ/dW1 = dJ/dz v^T (row 3 zero: the ReLU blocked z3)
DJ_DW1 = [[P1 * v for v in VECTOR], [(P2 - 1) * v for v in VECTOR], [0] * 8]
# one SGD step, lr 0.01, no momentum: w <- w - 0.01 dJ/dw
W1_11_AFTER = 0.9962059301457946    # 1 - 0.01 * 8 p1 = 1 - 0.0037940698542053425
F1_11_AFTER = 1.0009485174635513    # 1 - 0.01 * (-2 p1) = 1 + 0.0009485174635513356

TOLERANCES = {torch.float64: dict(rtol=1e-12, atol=1e-15),
              # float32: ln D comes from 39 - logsumexp(...) ~ 39.05, whose ulp is 3.8e-6 (~1e-4 of the loss)
              torch.float32: dict(rtol=2e-4, atol=1e-6)}


@pytest.fixture(params=("torch", *CUSTOM_IMPLS))
def any_impl(request):
    return request.param


def toy_cnn(impl, dtype):
    """The toy CNN built from the impl's ops; one forward and backward. Returns (leaves, values)."""
    ops = get_ops(impl)
    leaf = lambda values: torch.tensor(values, dtype=dtype).requires_grad_()  # noqa: E731
    leaves = {"x": leaf([[IMAGE]]), "filters": leaf([[FILTER1], [FILTER2]]), "conv_bias": leaf([0, 0]),
              "W1": leaf(W1), "b": leaf([0, 0, 0])}
    v = {}
    v["conv"] = ops.conv2d(leaves["x"], leaves["filters"], leaves["conv_bias"], 1, 0)
    v["pool"] = ops.max_pool2d(v["conv"], kernel_size=2, stride=1)
    v["vector"] = ops.flatten(v["pool"], 1)
    v["ip"] = ops.linear(v["vector"], leaves["W1"], leaves["b"])
    v["relu"] = ops.relu(v["ip"])
    v["log_softmax"] = ops.log_softmax(v["relu"], dim=1)
    for tensor in v.values():
        tensor.retain_grad()
    v["loss"] = ops.nll_loss(v["log_softmax"], torch.tensor([LABEL]))
    v["loss"].backward()
    return leaves, v


def expect(values, dtype, shape=None):
    tensor = torch.tensor(values, dtype=torch.float64)
    return (tensor.reshape(shape) if shape else tensor).to(dtype)


def check(name, actual, expected, dtype):
    torch.testing.assert_close(actual.detach(), expected, **TOLERANCES[dtype], msg=lambda m: f"{name}: {m}")


def test_sizes(any_impl):
    """Questions 1-4: conv output 3x3, pool output 2x2, ReLU and softmax outputs of length 3."""
    _, v = toy_cnn(any_impl, torch.float64)
    assert v["conv"].shape == (1, 2, 3, 3)      # height 3, width 3 (x 2 channels): (4 + 0 - 2)/1 + 1
    assert v["pool"].shape == (1, 2, 2, 2)      # height 2, width 2: (3 - 2)/1 + 1
    assert v["relu"].shape == (1, 3)
    assert v["log_softmax"].shape == (1, 3)


def test_forward(any_impl, dtype):
    _, v = toy_cnn(any_impl, dtype)
    check("conv", v["conv"], expect(CONV, dtype, (1, 2, 3, 3)), dtype)
    assert v["conv"][0, 2 - 1, 1 - 1, 1 - 1].item() == CONV_1_1_2           # (i, j, k) -> [k-1, i-1, j-1]
    check("pool", v["pool"], expect(POOL, dtype, (1, 2, 2, 2)), dtype)
    assert v["pool"][0, 1 - 1, 2 - 1, 1 - 1].item() == POOL_2_1_1
    check("vector", v["vector"], expect([VECTOR], dtype), dtype)
    check("ip", v["ip"], expect([IP], dtype), dtype)
    check("relu", v["relu"], expect([RELU], dtype), dtype)
    assert v["relu"][0, 2 - 1].item() == RELU_2
    softmax = v["log_softmax"].exp()
    check("softmax", softmax, expect([SOFTMAX], dtype), dtype)
    check("softmax[2]", softmax[0, 2 - 1], expect(SOFTMAX_2, dtype), dtype)
    check("loss", v["loss"], expect(LOSS, dtype), dtype)


def test_ip_input_order_is_the_handouts():
    """(i, j, k) of the pool output is entry (i-1)*COLS + j + (k-1)*ROWS*COLS (1-based) of the IP input."""
    rows = cols = 2
    by_formula = [0] * 8
    for k in range(1, 3):
        for i in range(1, rows + 1):
            for j in range(1, cols + 1):
                by_formula[(i - 1) * cols + j + (k - 1) * rows * cols - 1] = POOL[k - 1][i - 1][j - 1]
    assert by_formula == VECTOR


def test_backward(any_impl, dtype):
    leaves, v = toy_cnn(any_impl, dtype)
    softmax = v["log_softmax"].exp().detach()
    # dJ/dy for y = softmax = exp(log_softmax): dJ/dlog_softmax = dJ/dy * y, so dJ/dy = grad / y.
    dj_dy = v["log_softmax"].grad / softmax
    check("dJ/dy", dj_dy, expect([DJ_DY], dtype), dtype)
    check("dJ/dlog_softmax", v["log_softmax"].grad, expect([[0, -1, 0]], dtype), dtype)
    check("dJ/drelu", v["relu"].grad, expect([DJ_DRELU], dtype), dtype)
    check("dJ/dip", v["ip"].grad, expect([DJ_DIP], dtype), dtype)
    check("dJ/dW1", leaves["W1"].grad, expect(DJ_DW1, dtype), dtype)
    check("dJ/dW1(1,1)", leaves["W1"].grad[0, 0], expect(DJ_DW1_11, dtype), dtype)
    check("dJ/db", leaves["b"].grad, expect(DJ_DIP, dtype), dtype)
    check("dJ/dfilters", leaves["filters"].grad, expect(DJ_DFILTERS, dtype, (2, 1, 2, 2)), dtype)
    check("dJ/dF1(1,1)", leaves["filters"].grad[0, 0, 0, 0], expect(DJ_DF1_11, dtype), dtype)
    check("dJ/dconv_bias", leaves["conv_bias"].grad, expect([0, 0], dtype), dtype)


def test_one_sgd_step(any_impl, dtype):
    leaves, _ = toy_cnn(any_impl, dtype)
    torch.optim.SGD(leaves.values(), lr=LR, momentum=0).step()
    check("W1(1,1) after", leaves["W1"][0, 0], expect(W1_11_AFTER, dtype), dtype)
    check("F1(1,1) after", leaves["filters"][0, 0, 0, 0], expect(F1_11_AFTER, dtype), dtype)
    check("W1 after", leaves["W1"], expect(W1, dtype) - LR * expect(DJ_DW1, dtype), dtype)
    check("filters after", leaves["filters"],
          expect([[FILTER1], [FILTER2]], dtype) - LR * expect(DJ_DFILTERS, dtype, (2, 1, 2, 2)), dtype)


def test_hand_numbers_are_the_closed_forms():
    """The literals above are e^-3 / D etc. to double precision (guards against a typo)."""
    tail = torch.tensor(-3.0, dtype=torch.float64).exp() + torch.tensor(-39.0, dtype=torch.float64).exp()
    d = 1 + tail
    p = torch.tensor([36.0, 39.0, 0.0], dtype=torch.float64).softmax(0)
    exact = {"P1": (P1, p[0]), "P2": (P2, p[1]), "P3": (P3, p[2]), "LOSS": (LOSS, tail.log1p()),
             "DJ_DY": (DJ_DY[1], -d), "DJ_DW1_11": (DJ_DW1_11, 8 * p[0]), "DJ_DF1_11": (DJ_DF1_11, -2 * p[0]),
             "W1_11_AFTER": (W1_11_AFTER, 1 - LR * 8 * p[0]), "F1_11_AFTER": (F1_11_AFTER, 1 + LR * 2 * p[0])}
    for name, (literal, value) in exact.items():
        assert literal == pytest.approx(value.item(), rel=1e-15, abs=1e-30), name


# ---------------------------------------------------------------------------------------------
# Seed 001 question 3: conv backward to the input = conv of the zero-padded output gradient
# with the flipped (both spatial axes), channel-swapped (in <-> out) kernels.
# For stride 1 and forward padding p, dL/dx = conv(dL/dy, w.flip(2,3).transpose(0,1), padding K-1-p).
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n, c_in, c_out, h, w, k_h, k_w, padding", [
    (2, 3, 4, 7, 6, 3, 2, 0),
    (1, 2, 2, 5, 5, 5, 5, 0),
    (2, 1, 20, 12, 12, 5, 5, 0),      # SimpleConvNet's conv on a smaller image
    (1, 3, 2, 6, 5, 3, 3, 1),         # with forward padding: pad the gradient by K-1-p
])
def test_conv_input_grad_is_a_conv_with_flipped_kernels(impl, dtype, n, c_in, c_out, h, w, k_h, k_w, padding):
    ops = get_ops(impl)
    g = torch.Generator().manual_seed(n * 100 + c_in * 10 + c_out)
    x = torch.randn(n, c_in, h, w, generator=g, dtype=dtype, requires_grad=True)
    weight = torch.randn(c_out, c_in, k_h, k_w, generator=g, dtype=dtype)
    bias = torch.randn(c_out, generator=g, dtype=dtype)
    y = ops.conv2d(x, weight, bias, 1, padding)
    grad_y = torch.randn(y.shape, generator=g, dtype=dtype)
    (grad_x,) = torch.autograd.grad(y, x, grad_y)
    as_conv = ops.conv2d(grad_y, weight.flip(2, 3).transpose(0, 1).contiguous(), None, 1,
                         (k_h - 1 - padding, k_w - 1 - padding))
    assert as_conv.shape == x.shape
    assert_close("grad_x vs conv of padded grad_y", grad_x, as_conv, dtype=dtype)


def test_handout_1d_example(impl):
    """The handout's case: X in R^{2x4}, kernel 3, 2 output channels, no padding, as a 2-D conv of height 1.

    W^{ij} scans input channel i and feeds output channel j: torch's weight[j-1, i-1, 0, :] = W^{ij}.
    Distinct integers everywhere, so every sum is exact in float64 and the checks are equalities.
    """
    ops = get_ops(impl)
    W = {(1, 1): [1, 2, 3], (2, 1): [4, 5, 6], (1, 2): [7, 8, 9], (2, 2): [10, 11, 12]}   # W[(i, j)] = W^{ij}
    X = [[1, -2, 3, 5], [-7, 11, 2, -1]]
    weight = torch.tensor([[[W[(i, j)]] for i in (1, 2)] for j in (1, 2)], dtype=torch.float64)   # [2, 2, 1, 3]
    x = torch.tensor(X, dtype=torch.float64).reshape(1, 2, 1, 4).requires_grad_()
    y = ops.conv2d(x, weight, None, 1, 0)
    assert y.shape == (1, 2, 1, 2)

    # (a) Y~ = A X~ with the handout's A (rows y11, y12, y21, y22; columns x11..x14, x21..x24)
    w = lambda i, j, k: W[(i, j)][k - 1]  # noqa: E731  w_k^{ij}
    A = torch.tensor([
        [w(1, 1, 1), w(1, 1, 2), w(1, 1, 3), 0, w(2, 1, 1), w(2, 1, 2), w(2, 1, 3), 0],
        [0, w(1, 1, 1), w(1, 1, 2), w(1, 1, 3), 0, w(2, 1, 1), w(2, 1, 2), w(2, 1, 3)],
        [w(1, 2, 1), w(1, 2, 2), w(1, 2, 3), 0, w(2, 2, 1), w(2, 2, 2), w(2, 2, 3), 0],
        [0, w(1, 2, 1), w(1, 2, 2), w(1, 2, 3), 0, w(2, 2, 1), w(2, 2, 2), w(2, 2, 3)]], dtype=torch.float64)
    x_tilde = torch.tensor(X, dtype=torch.float64).reshape(8)
    assert torch.equal(y.detach().reshape(4), A @ x_tilde)

    # (b) dL/dX~ = A^T dL/dY~
    grad_y = torch.tensor([[[[3, -1]], [[2, 5]]]], dtype=torch.float64)       # dL/dy11, y12, y21, y22
    (grad_x,) = torch.autograd.grad(y, x, grad_y)
    assert torch.equal(grad_x.reshape(8), A.T @ grad_y.reshape(4))

    # (c) ... which is a convolution of dL/dY zero-padded by 2 (= K - 1) with the 2x3 kernel, for
    # row i of dL/dX, [[w3^{i1}, w2^{i1}, w1^{i1}], [w3^{i2}, w2^{i2}, w1^{i2}]] (rows: channels j of dL/dY)
    kernels = torch.tensor([[[[w(i, j, 3), w(i, j, 2), w(i, j, 1)]] for j in (1, 2)] for i in (1, 2)],
                           dtype=torch.float64)                                 # [2 (i), 2 (j), 1, 3]
    assert torch.equal(kernels, weight.flip(2, 3).transpose(0, 1))
    assert torch.equal(ops.conv2d(grad_y, kernels, None, 1, (0, 2)), grad_x)
    # The handout's row-1 kernel is exactly that; its row-2 kernel is printed unflipped,
    # [[w1^{21}, w2^{21}, w3^{21}], [w1^{22}, w2^{22}, w3^{22}]], which does not give row 2 here:
    printed_row2 = torch.tensor([[[[w(2, 1, 1), w(2, 1, 2), w(2, 1, 3)]], [[w(2, 2, 1), w(2, 2, 2), w(2, 2, 3)]]]],
                                dtype=torch.float64)
    assert not torch.equal(ops.conv2d(grad_y, printed_row2, None, 1, (0, 2))[0, 0], grad_x[0, 1])


# ---------------------------------------------------------------------------------------------
# Seed 001 question 1: X in R^{64x64x128}; conv 3x3 -> 256 channels, stride 2, pad 1; then conv 3x3
# -> 512 channels, stride 1, pad 1 (the handout's solution: 32x32 after each). Counted from the
# shapes by simple_conv_net.summary.count.
# ---------------------------------------------------------------------------------------------

def test_handout_block_parameters_and_multiply_adds():
    from simple_conv_net.summary import count

    w1 = torch.empty(256, 128, 3, 3, device="meta")
    w2 = torch.empty(512, 256, 3, 3, device="meta")
    rows = count(lambda ops, x: ops.conv2d(ops.conv2d(x, w1, None, 2, 1), w2, None, 1, 1), (128, 64, 64))
    first, second = rows
    # sizes: (64 + 2*1 - 3) // 2 + 1 = 32, then (32 + 2*1 - 3) // 1 + 1 = 32
    assert first.output_shape == (256, 32, 32) and second.output_shape == (512, 32, 32)
    # (a) parameters, biases skipped: 3*3*128*256 + 3*3*256*512 = 294912 + 1179648 = 1474560
    assert (first.weight_params, second.weight_params) == (3 * 3 * 128 * 256, 3 * 3 * 256 * 512) == (294912, 1179648)
    assert first.weight_params + second.weight_params == 1474560
    # (b) multiply-adds: 3*3*128*256*32*32 + 3*3*256*512*32*32 = 301989888 + 1207959552 = 1509949440
    assert (first.macs, second.macs) == (3 * 3 * 128 * 256 * 32 * 32, 3 * 3 * 256 * 512 * 32 * 32)
    assert first.macs + second.macs == 1509949440
    # (c) features: 64*64*128 = 524288 in, 32*32*256 = 262144 (50%) between, 32*32*512 = 524288 out: no change
    assert (64 * 64 * 128, 32 * 32 * 256, 32 * 32 * 512) == (524288, 262144, 524288)
    assert [r.activation_bytes // 4 for r in rows] == [262144, 524288]

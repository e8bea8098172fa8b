"""Finite differences (simple_conv_net.finite_diff) against each impl's hand-written backward, float64.

Tolerance: finite_diff.TOLERANCE = 1e-6 on max_rel. Central differences in float64 with eps 1e-6
have truncation error ~eps^2 = 1e-12 and rounding error ~1e-16 * |f| / eps ~ 1e-10 absolute, so
~1e-8 relative to the gradients here (measured 1e-10 to 4e-8); a wrong backward gives max_rel ~1.
Small batch (2) and a seeded sample of entries per tensor keep it fast.
"""

import importlib

import pytest
import torch
from torch.autograd import gradcheck
from torch.func import functional_call

from simple_conv_net import finite_diff, parity
from simple_conv_net.finite_diff import TOLERANCE, finite_diff_report, finite_diff_rows, sample_indices
from simple_conv_net.functions import Kernels, conv2d_op, linear_op
from simple_conv_net.model import SimpleConvNet, build_model
from simple_conv_net.parity import make_batch

ENTRIES = 6


pytestmark = pytest.mark.usefixtures("one_thread")  # many tiny passes: threads would only add contention


def simple_net(impl, seed=0):
    torch.manual_seed(seed)
    return SimpleConvNet(impl).double()


def batch(seed=0, shape=(1, 28, 28)):
    return make_batch("random", 2, torch.float64, seed, shape=shape)


def assert_all_pass(rows):
    failed = [(row.name, row.max_rel) for row in rows if not row.passed]
    assert not failed, failed


def test_tolerance_is_the_documented_one():
    assert TOLERANCE == 1e-6 and finite_diff.EPS == 1e-6


def test_rows_print_with_the_parity_table():
    rows = finite_diff_rows(simple_net("vector"), *batch(), layer="fc2", max_entries=2)
    assert "PASS" in parity.format_table(rows) and "FAIL" not in parity.format_table(rows)


@pytest.mark.parametrize("impl_or_torch", ["torch", "vector", "scalar"])
def test_whole_net(impl_or_torch):
    """Every parameter and the input; 'torch' (native autograd) checks the checker itself."""
    model = simple_net(impl_or_torch)
    rows = finite_diff_rows(model, *batch(), max_entries=ENTRIES)
    assert [row.name for row in rows] == ["input", *dict(model.named_parameters())]
    assert all(row.kind == "fd" and row.tolerance == TOLERANCE for row in rows)
    assert [(row.checked, row.kinks) for row in rows] == [(ENTRIES, 0)] * len(rows)   # random data: no kinks
    assert_all_pass(rows)


@pytest.mark.parametrize("layer", SimpleConvNet("torch").intermediates())
def test_each_layer(impl, layer):
    model = simple_net(impl)
    rows = finite_diff_rows(model, *batch(1), layer=layer, max_entries=ENTRIES, seed=1)
    params = {"conv": ["conv_layer.weight", "conv_layer.bias"], "fc1": ["fc_layer1.weight", "fc_layer1.bias"],
              "fc2": ["fc_layer2.weight", "fc_layer2.bias"]}.get(layer, [])
    assert [row.name for row in rows] == [f"{layer}.input", *params]
    assert_all_pass(rows)


@pytest.mark.parametrize("model_name, shape", [("lenet", (1, 28, 28)), ("lenet5", (3, 32, 32))])
def test_other_models_whole_net(impl, model_name, shape):
    torch.manual_seed(0)
    model = build_model(model_name, impl, shape).double()
    rows = finite_diff_rows(model, *batch(2, shape), max_entries=3, seed=2)
    assert len(rows) == 1 + len(list(model.parameters()))
    assert_all_pass(rows)


def test_every_entry_of_small_tensors_beside_gradcheck(impl):
    """Every entry (max_entries=None) of the conv and fc2 biases, through the whole loss, agrees with
    the backward, and so does torch.autograd.gradcheck on the same function of the same tensors."""
    model = simple_net(impl)
    x, target = batch(3)
    names = ["conv_layer.bias", "fc_layer2.bias"]
    rows = finite_diff_rows(model, x, target, max_entries=None, names=names)
    assert [(row.name, row.checked) for row in rows] == [("conv_layer.bias", 20), ("fc_layer2.bias", 10)]
    assert_all_pass(rows)

    params = dict(model.named_parameters())

    def loss(*tensors):
        return model.loss(functional_call(model, dict(zip(names, tensors)), (x,)), target)

    inputs = tuple(params[n].detach().clone().requires_grad_() for n in names)
    assert gradcheck(loss, inputs, eps=1e-6, atol=1e-8, rtol=1e-6)
    with pytest.raises(ValueError, match="argument 'names'"):
        finite_diff_rows(model, x, target, max_entries=1, names=["fc9.bias"])


def test_float32_model_is_checked_in_float64_and_left_alone(impl):
    torch.manual_seed(0)
    model = SimpleConvNet(impl)  # float32
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    x, target = make_batch("random", 2, torch.float32, seed=0)
    rows = finite_diff_rows(model, x, target, layer="conv", max_entries=ENTRIES)
    assert_all_pass(rows)
    assert all(p.dtype == torch.float32 and p.grad is None and torch.equal(p, before[n])
               for n, p in model.named_parameters())


def blank_left_half(seed=0):
    """A batch whose left half is 0, like MNIST's blank margins: there the conv outputs all equal the
    bias, so max-pool windows tie and a pixel step breaks the tie (a kink of the loss)."""
    x, target = batch(seed)
    x[..., :14] = 0
    return x, target


def test_kinks_are_left_out_not_failed(impl):
    rows = finite_diff_rows(simple_net(impl), *blank_left_half(), max_entries=40, names=["input"])
    (row,) = rows
    assert row.kinks > 0 and row.checked > 0 and row.checked + row.kinks == 40
    assert_all_pass(rows)


def test_kinks_do_not_hide_a_wrong_backward(impl, monkeypatch):
    _flip(impl, monkeypatch, "conv2d", 0)
    (row,) = finite_diff_rows(simple_net(impl), *blank_left_half(), max_entries=40, names=["input"])
    assert row.kinks > 0 and not row.passed


def test_sampling_is_seeded_and_without_replacement():
    a, b = sample_indices("fc_layer1.weight", 1000, 50, seed=0), sample_indices("fc_layer1.weight", 1000, 50, 0)
    assert torch.equal(a, b) and len(a.unique()) == 50 and a.min() >= 0 and a.max() < 1000
    assert not torch.equal(a, sample_indices("fc_layer1.weight", 1000, 50, seed=1))
    assert not torch.equal(a, sample_indices("fc_layer2.weight", 1000, 50, seed=0))
    assert torch.equal(sample_indices("x", 7, 50, 0), torch.arange(7))
    assert torch.equal(sample_indices("x", 7, None, 0), torch.arange(7))
    with pytest.raises(ValueError, match="max_entries"):
        sample_indices("x", 7, 0, 0)


def test_unknown_layer_is_an_error():
    with pytest.raises(ValueError, match="argument 'layer' expected one of"):
        finite_diff_rows(simple_net("vector"), *batch(), layer="conv9", max_entries=1)


def _flip(impl, monkeypatch, op, which):
    """Rebuild ``impl``'s op ``op`` with the sign of gradient number ``which`` of its backward flipped
    (as test_parity_cli does); the model must be built after this."""
    module = importlib.import_module(f"{impl}_ops.{op}")
    forward, backward = getattr(module, f"{op}_forward"), getattr(module, f"{op}_backward")

    def flipped(*args):
        grads = list(backward(*args))
        grads[which] = -grads[which]
        return tuple(grads)

    make = {"conv2d": conv2d_op, "linear": linear_op}[op]
    monkeypatch.setattr(importlib.import_module(f"{impl}_ops"), op, make(Kernels(forward, flipped)))


@pytest.mark.parametrize("op, which, layer, caught", [
    ("conv2d", 0, None, {"input"}),
    ("conv2d", 0, "conv", {"conv.input"}),
    ("conv2d", 1, None, {"conv_layer.weight"}),
    ("linear", 1, None, {"fc_layer1.weight", "fc_layer2.weight"}),
    ("linear", 2, "fc1", {"fc_layer1.bias"}),
])
def test_a_wrong_backward_is_caught(impl, monkeypatch, op, which, layer, caught):
    _flip(impl, monkeypatch, op, which)
    rows = finite_diff_rows(simple_net(impl), *batch(), layer=layer, max_entries=ENTRIES)
    failed = {row.name for row in rows if not row.passed}
    assert failed == caught
    assert all(row.max_rel > 100 * TOLERANCE for row in rows if row.name in caught)


def test_report_and_cli(impl, capsys):
    rows, text = finite_diff_report(impl, "simple", torch.float32, "fc2", 4, seed=5)
    assert all(row.passed for row in rows) and len(rows) == 3
    assert "layer 'fc2'" in text and "float64 (drawn in float32)" in text and "3 passed, 0 failed" in text
    argv = ["--finite-diff", "--impl", impl, "--data", "random"]
    assert parity.main([*argv, "--layer", "pool", "--fd-entries", "3"]) == 0
    assert "PASS" in capsys.readouterr().out
    assert parity.main([*argv, "--layer", "nope"]) == 2
    assert "argument 'layer'" in capsys.readouterr().err

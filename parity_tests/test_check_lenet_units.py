"""The lenet-dict and model forms' pure parts: seed 003's column layouts, the native truths and the update rules,
the declared LeNet and the alignment of a traced forward with it. (The forms end to end, against the corpora's
manifests: test_check_lenet.py.)"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from simple_conv_net.check.forms import architecture, columns, lenet_truth
from simple_conv_net.model import LeNet5


@pytest.fixture
def x():
    return torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


@pytest.mark.parametrize("layout", columns.LAYOUTS)
def test_columns_round_trip(x, layout):
    data = columns.to_columns(x, layout)
    assert data.shape == (4 * 5 * 3, 2)
    assert torch.equal(columns.from_columns(data, 4, 5, 3, layout), x)


def test_columns_orders(x):
    """hwc-C: the channel fastest (np.reshape(column, (h, w, c))); hwc-F: the height fastest (order='F');
    chw-C: an NCHW sample as it lies in memory."""
    sample = x[1].numpy()                                          # (c, h, w)
    assert np.array_equal(columns.to_columns(x, "hwc-C")[:, 1], sample.transpose(1, 2, 0).reshape(-1))
    assert np.array_equal(columns.to_columns(x, "hwc-F")[:, 1], sample.transpose(1, 2, 0).reshape(-1, order="F"))
    assert np.array_equal(columns.to_columns(x, "chw-C")[:, 1], sample.reshape(-1))


@pytest.mark.parametrize("layout", columns.LAYOUTS)
def test_conv_weight_rows_pair_with_each_layout(x, layout):
    """A convolution that reads windows in a layout with w's rows in that layout's order is torch's conv2d."""
    weight = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    w = columns.conv_weight_rows(weight, layout)
    assert w.shape == (2 * 2 * 3, 4)
    window = x[:, :, 1:3, 2:4]                                        # output position (1, 2)
    got = columns.to_columns(window, layout).T @ w                    # [N, num]
    assert np.allclose(got, F.conv2d(x, weight)[:, :, 1, 2].numpy())
    assert torch.equal(columns.conv_weight_from_rows(w, 3, 2, layout), weight)


def test_bad_layout_and_sizes_are_named(x):
    with pytest.raises(ValueError, match="layout: expected one of hwc-C, hwc-F, chw-C, got 'hwc'"):
        columns.to_columns(x, "hwc")
    with pytest.raises(ValueError, match=r"data: expected \[height \* width \* channel = 60, batch\]"):
        columns.from_columns(np.zeros((59, 2)), 4, 5, 3, "hwc-C")


def test_layer_truth_sums_over_the_batch(x):
    """The handouts' backward passes sum the gradients over the batch: autograd of the sum with diff."""
    weight, bias = torch.randn(5, 60, dtype=torch.float64), torch.randn(5, dtype=torch.float64)
    diff = torch.randn(2, 5, dtype=torch.float64)
    truth = lenet_truth.layer_truth("inner_product", x.flatten(1), weight, bias, diff)
    assert torch.allclose(truth["w"], diff.T @ x.flatten(1))
    assert torch.allclose(truth["b"], diff.sum(0))
    assert torch.allclose(truth["input_od"], diff @ weight)


def _update_arguments():
    g = torch.Generator().manual_seed(2)
    layers = {i: {"w": torch.randn(3, 2, generator=g, dtype=torch.float64),
                  "b": torch.randn(2, generator=g, dtype=torch.float64)} for i in (1, 2)}
    winc = {i: {k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in layer.items()}
            for i, layer in layers.items()}
    grad = {i: {k: torch.randn(v.shape, generator=g, dtype=torch.float64) for k, v in layer.items()}
            for i, layer in layers.items()}
    return 0.1, 0.3, 0.5, 0.2, layers, winc, grad


def test_sgd_truth_is_the_handouts_rule():
    """One step of torch.optim.SGD with its buffer seeded as winc / rate is seed 003's eqs. 9-13."""
    arguments = _update_arguments()
    truth, formula = lenet_truth.sgd_truth(*arguments), lenet_truth.sgd_variant(None, *arguments)
    for key in (1, 2):
        for part in "wb":
            assert torch.allclose(truth.params[key][part], formula.params[key][part], rtol=1e-12, atol=1e-14)
            assert torch.allclose(truth.winc[key][part], formula.winc[key][part], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("variant, wrong", [("decay missing", {"params.w", "winc.w"}),
                                            ("decay on bias", {"params.b", "winc.b"}),
                                            ("momentum after step", {"params.w", "params.b"}),
                                            ("rates swapped", {"params.w", "params.b", "winc.w", "winc.b"})])
def test_each_sgd_variant_changes_what_it_says(variant, wrong):
    arguments = _update_arguments()
    truth, other = lenet_truth.sgd_variant(None, *arguments), lenet_truth.sgd_variant(variant, *arguments)
    differs = {f"{part}.{p}" for part in ("params", "winc") for p in "wb"
               if not torch.allclose(getattr(truth, part)[1][p], getattr(other, part)[1][p])}
    assert differs == wrong


def test_sgd_truth_refuses_a_zero_rate():
    with pytest.raises(ValueError, match="rates: expected w_rate and b_rate > 0"):
        lenet_truth.sgd_truth(0.0, 0.1, 0.9, 0.0, {}, {}, {})


def test_get_lr_is_the_inv_policy():
    assert lenet_truth.get_lr(0, 0.01, 1e-4, 0.75) == 0.01
    assert lenet_truth.get_lr(10000, 0.01, 1e-4, 0.75) == pytest.approx(0.01 * 2 ** -0.75)


def test_declared_lenet_is_this_projects_lenet5():
    """Names, parameters per layer and in all (62,006 for ten classes) agree with simple_conv_net.model.LeNet5."""
    declaration = architecture.lenet5(10)
    reference = LeNet5("torch", (3, 32, 32), 10)
    assert [d.name for d in declaration] == [n for n in reference.intermediates() if n != "output"]
    assert architecture.total_parameters(declaration) == sum(p.numel() for p in reference.parameters()) == 62006
    for layer in declaration:
        if layer.parameters:
            module = getattr(reference, layer.name)
            assert layer.parameters == sum(p.numel() for p in module.parameters())


def _events(*layers):
    return [{"kind": kind, "name": name, "text": text, "width": width} for kind, name, text, width in layers]


GOOD = (("conv", "conv1", "Conv2d(3, 6, 5)", 6), ("relu", "relu", "ReLU", None),
        ("maxpool", "pool", "MaxPool2d(2, 2)", None), ("conv", "conv2", "Conv2d(6, 16, 5)", 16),
        ("relu", "relu", "ReLU", None), ("maxpool", "pool", "MaxPool2d(2, 2)", None),
        ("flatten", "flatten", "Flatten", None), ("linear", "fc1", "Linear(400, 120)", 120),
        ("relu", "relu", "ReLU", None), ("linear", "fc2", "Linear(120, 84)", 84), ("relu", "relu", "ReLU", None),
        ("linear", "fc3", "Linear(84, 10)", 10))


def test_layer_differences_name_each_kind_of_change():
    declaration = architecture.lenet5(10)
    assert architecture.layer_differences(declaration, _events(*GOOD)) == ({}, None)
    no_relu = GOOD[:10] + GOOD[11:]
    assert architecture.layer_differences(declaration, _events(*no_relu)) == (
        {"relu4": "missing: no ReLU (after fc2)"}, "relu4")
    wide = GOOD[:7] + (("linear", "fc1", "Linear(400, 100)", 100), GOOD[8],
                       ("linear", "fc2", "Linear(100, 84)", 84)) + GOOD[10:]
    assert architecture.layer_differences(declaration, _events(*wide))[0] == {
        "fc1": "Linear(400, 100), declared Linear(400, 120)", "fc2": "Linear(100, 84), declared Linear(120, 84)"}
    extra = GOOD + (("softmax", "softmax", "Softmax(dim=1)", None),)
    assert architecture.layer_differences(declaration, _events(*extra))[0] == {
        "softmax": "extra: Softmax(dim=1) after fc3"}

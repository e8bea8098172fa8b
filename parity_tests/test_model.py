"""Whole-network parity: SimpleConvNet forward, backward and 20 training steps, custom impl vs native."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import assert_close
from simple_conv_net import handout
from simple_conv_net.model import SimpleConvNet
from simple_conv_net.parity import make_batch, parity_rows


# The homework's names of SimpleConvNet's intermediates (seed 000), in order.
INTERMEDIATES = ("conv", "pool", "reshape", "fc1", "relu", "fc2", "output")


def test_intermediates_have_the_homework_names():
    assert SimpleConvNet().intermediates() == INTERMEDIATES


@pytest.mark.parametrize("source", ["random", "mnist"])
def test_every_intermediate_and_gradient(impl, dtype, device, source):
    x, target = make_batch(source, 16, dtype, seed=0)
    x, target = x.to(device), target.to(device)
    rows = parity_rows(impl, x, target, seed=0)
    names = {(row.kind, row.name) for row in rows}
    assert {("forward", n) for n in INTERMEDIATES} | {("grad", n) for n in INTERMEDIATES} <= names
    assert {("grad", "input"), ("grad", "conv_layer.weight"), ("grad", "fc_layer2.bias")} <= names
    failed = [(r.kind, r.name, r.max_rel) for r in rows if not r.passed]
    assert not failed


def test_loss_delta_is_softmax_minus_onehot(impl):
    """Seed 000 eq. 6: dL/dz_fc2 = (softmax(z_fc2) - onehot(t)) / N for the mean nll of log_softmax."""
    x, target = make_batch("random", 8, torch.float64, seed=3)
    model = SimpleConvNet(impl).double()
    output, z = model(x, return_intermediates=True)
    z["fc2"].retain_grad()
    model.loss(output, target).backward()
    expected = (torch.softmax(z["fc2"].detach(), dim=1) - F.one_hot(target, 10).double()) / len(x)
    torch.testing.assert_close(z["fc2"].grad, expected, rtol=1e-12, atol=1e-15)


class HomeworkNet(nn.Module):
    """The parameter layout of the homework's simple_conv_net_train.py."""

    def __init__(self):
        super().__init__()
        self.conv_layer = nn.Conv2d(1, 20, kernel_size=5, stride=1, padding=0, dilation=1, groups=1, bias=True)
        self.fc_layer1 = nn.Linear(20 * 12 * 12, 500)
        self.fc_layer2 = nn.Linear(500, 10)


def test_homework_state_dict_loads_into_every_impl(impl, tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "homework.pt"
    torch.save(HomeworkNet().state_dict(), path)
    model = SimpleConvNet(impl)
    model.load_state_dict(torch.load(path, weights_only=True))
    x, _ = make_batch("random", 4, torch.float32, seed=0)
    reference = SimpleConvNet("torch")
    reference.load_state_dict(model.state_dict())
    torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-6)


def test_initialisation_matches_nn_layers():
    """Same seed -> the same weights as nn.Conv2d / nn.Linear built in that order."""
    torch.manual_seed(7)
    model = SimpleConvNet("vector")
    torch.manual_seed(7)
    homework = HomeworkNet()
    for (name, p), (name_h, p_h) in zip(model.state_dict().items(), homework.state_dict().items()):
        assert name == name_h
        torch.testing.assert_close(p, p_h, rtol=0, atol=0)


def test_impl_is_validated():
    with pytest.raises(ValueError, match="'impl' expected one of"):
        SimpleConvNet("numpy")


def train_steps(impl, steps=20, batch=16):
    torch.manual_seed(1)
    model = SimpleConvNet(impl).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    x_all, t_all = make_batch("mnist", max(steps, 1) * batch, torch.float64, seed=0)
    for step in range(steps):
        x, t = x_all[step * batch:(step + 1) * batch], t_all[step * batch:(step + 1) * batch]
        optimizer.zero_grad()
        model.loss(model(x), t).backward()
        optimizer.step()
    return dict(model.named_parameters())


def test_training_trajectory(impl):
    """20 SGD steps (lr 0.01, momentum 0.5) from one init on the same batches, float64: parameters agree to 1e-10."""
    initial, reference, candidate = train_steps("torch", steps=0), train_steps("torch"), train_steps(impl)
    for name, p in reference.items():
        assert not torch.equal(p, initial[name]), f"{name} did not move: the check would be vacuous"
        assert_close(name, p, candidate[name])


@pytest.mark.parametrize("kind", ["vector", "scalar"])
def test_handout_names(kind):
    """The homework's function names run the impl and match native PyTorch."""
    x, _ = make_batch("random", 2, torch.float64, seed=0)
    torch.manual_seed(0)
    net = SimpleConvNet("torch").double()
    fn = {name: getattr(handout, f"{name}_{kind}") for name in ("conv2d", "pool2d", "relu", "reshape", "fc_layer")}
    conv = fn["conv2d"](x, net.conv_layer.weight, net.conv_layer.bias, "cpu")
    pool = fn["pool2d"](conv, "cpu")
    flat = fn["reshape"](pool, "cpu")
    fc1 = fn["fc_layer"](flat, net.fc_layer1.weight, net.fc_layer1.bias, "cpu")
    out = fn["fc_layer"](fn["relu"](fc1, "cpu"), net.fc_layer2.weight, net.fc_layer2.bias, "cpu")
    _, z = net(x, return_intermediates=True)
    for name, mine in (("conv", conv), ("pool", pool), ("reshape", flat), ("fc1", fc1), ("fc2", out)):
        assert handout.diff_mse(mine, z[name]) < 1e-24, name


def test_handout_im2col_and_weight_rows():
    x, _ = make_batch("random", 2, torch.float64, seed=0)
    w = torch.randn(4, 1, 5, 5, dtype=torch.float64)
    columns = handout.im2col(x, 5, "cpu")
    assert columns.shape == (2, 25, 24 * 24)
    rows = handout.conv_weight2rows(w)
    assert rows.shape == (4, 25)
    z = (rows @ columns).reshape(2, 4, 24, 24)
    torch.testing.assert_close(z, F.conv2d(x, w))


def test_diff_mse():
    assert handout.diff_mse(torch.zeros(2, 3), torch.ones(6)) == 1.0
    with pytest.raises(ValueError, match="same number of elements"):
        handout.diff_mse(torch.zeros(2), torch.zeros(3))

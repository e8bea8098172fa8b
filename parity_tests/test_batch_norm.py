"""Batch normalisation (seed 001, question 2): forward, gradients and running statistics vs native, both modes."""

import pytest
import torch
import torch.nn.functional as F

from conftest import assert_close, assert_same_gradients
from simple_conv_net.backends import get_ops


def random(*shape, dtype, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 5, 4), (2, 3, 7), (1, 4, 3, 3)])
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("affine", [True, False], ids=["affine", "plain"])
def test_batch_norm(impl, dtype, shape, training, affine):
    channels = shape[1]
    x = random(*shape, dtype=dtype, seed=0) * 3 + 1
    weight = random(channels, dtype=dtype, seed=1) if affine else None
    bias = random(channels, dtype=dtype, seed=2) if affine else None
    ours = (random(channels, dtype=dtype, seed=3), random(channels, dtype=dtype, seed=4).abs() + 0.5)
    native = tuple(t.clone() for t in ours)
    truth = tuple(t.to(torch.float64, copy=True) for t in ours)  # the float64 truth moves running statistics of its own
    batch_norm = get_ops(impl).batch_norm
    assert_same_gradients(lambda x, w, b: batch_norm(x, *ours, w, b, training, 0.1, 1e-5),
                          lambda x, w, b: F.batch_norm(x, *native, w, b, training, 0.1, 1e-5), [x, weight, bias],
                          truth_fn=lambda x, w, b: F.batch_norm(x, *truth, w, b, training, 0.1, 1e-5))
    assert_close("running_mean", native[0], ours[0])
    assert_close("running_var", native[1], ours[1])


def test_batch_norm_without_running_stats(impl):
    x = random(6, 3, dtype=torch.float64, seed=5)
    torch.testing.assert_close(get_ops(impl).batch_norm(x, None, None, training=True),
                               F.batch_norm(x, None, None, training=True))


def test_handout_worked_example(impl):
    """Seed 001 Q2: 3 features x mini-batch of 4, eps = 0, gamma = 1, beta = (0, -10, 10).

    Training mode refuses eps = 0, as PyTorch does (a channel of equal values would give 0/0); eps = 1e-30
    vanishes against these variances (1 and 25) in float64, so this computes the handout's eps = 0 exactly."""
    z = torch.tensor([[12.0, 14, 14, 12], [0, 10, 10, 0], [-5, 5, 5, -5]], dtype=torch.float64).T  # [4, 3]
    running_mean, running_var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    gamma, beta = torch.ones(3, dtype=torch.float64), torch.tensor([0.0, -10, 10], dtype=torch.float64)
    z_tilde = get_ops(impl).batch_norm(z, running_mean, running_var, gamma, beta, True, 0.1, 1e-30)
    # mu = (13, 5, 0), sigma^2 = (1, 25, 25): z_hat = [[-1, 1, 1, -1]] for every feature, then gamma z_hat + beta.
    expected = torch.tensor([[-1.0, 1, 1, -1], [-11, -9, -9, -11], [9, 11, 11, 9]], dtype=torch.float64)
    torch.testing.assert_close(z_tilde.T, expected, rtol=0, atol=1e-15)
    # Running statistics: 0.9 * old + 0.1 * (batch mean, unbiased variance = biased * 4/3).
    torch.testing.assert_close(running_mean, 0.1 * torch.tensor([13.0, 5, 0], dtype=torch.float64))
    torch.testing.assert_close(running_var, 0.9 + 0.1 * torch.tensor([1.0, 25, 25], dtype=torch.float64) * 4 / 3)


def test_gradcheck(impl):
    x = random(3, 2, 2, 2, dtype=torch.float64, seed=6).requires_grad_()
    w = random(2, dtype=torch.float64, seed=7).requires_grad_()
    b = random(2, dtype=torch.float64, seed=8).requires_grad_()
    batch_norm = get_ops(impl).batch_norm
    assert torch.autograd.gradcheck(lambda x, w, b: batch_norm(x, None, None, w, b, True, 0.1, 1e-5), (x, w, b))


@pytest.mark.parametrize("args,fragment", [
    (((torch.zeros(4), None, None), {"training": True}), "'input'"),
    (((torch.zeros(4, 3), torch.zeros(2), torch.ones(2)), {}), "'running_mean'"),
    (((torch.zeros(1, 3), None, None), {"training": True}), "more than 1 value per channel"),
    (((torch.zeros(4, 3), torch.zeros(3), torch.ones(3)), {"momentum": None}), "'momentum'"),
    (((torch.zeros(4, 3), None, None), {"training": False}), "'running_mean'"),
])
def test_bad_input(impl, args, fragment):
    with pytest.raises((ValueError, TypeError), match=fragment):
        get_ops(impl).batch_norm(*args[0], **args[1])


@pytest.mark.parametrize("momentum", [None, 0.3, -0.5], ids=["cumulative", "0.3", "negative"])
def test_a_models_batch_norm_layer_moves_its_statistics_as_nn_batch_norm(impl, momentum):
    """Three training steps of LeNet-5's bn1 layer (simple_conv_net.model.batch_norm) leave the running statistics and
    the batch count that nn.BatchNorm2d's own forward leaves: any real momentum, and momentum=None, the cumulative
    average (each step's factor 1 / batches seen, checks.running_average_factor)."""
    from simple_conv_net.model import batch_norm

    ours, native = (torch.nn.BatchNorm2d(3, momentum=momentum).double() for _ in range(2))
    layer = batch_norm(ours)
    for step in range(3):
        x = random(4, 3, 5, 5, dtype=torch.float64, seed=10 + step)
        assert_close(f"step {step} output", native(x), layer(get_ops(impl), x))
    for name, value in native.state_dict().items():
        if value.is_floating_point():
            assert_close(name, value, ours.state_dict()[name])
        else:
            assert torch.equal(ours.state_dict()[name], value), name       # num_batches_tracked

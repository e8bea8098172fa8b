"""simple_conv_net.optim.SGD against torch.optim.SGD, hand-written loops of the handouts' equations,
and numbers worked by hand (seed 003 eqs. 9-13, seed 004 eqs. 17-18).

Parity: 50 steps in float64 on a tiny conv net (and once on a small LeNet-5), every parameter
within 1e-12 of the reference, relative to the reference's largest entry (max|a - b| / max|b|).
"""

import copy
import io
import sys

import pytest
import torch
from torch import nn

from simple_conv_net.model import LeNet5
from simple_conv_net.optim import SGD, InverseDecay, weight_decay_groups

STEPS = 50
TOL = 1e-12
EPS, GAMMA, POWER = 0.05, 0.1, 0.75


class TinyNet(nn.Sequential):
    """conv 4 (3x3) -> ReLU -> flatten -> linear 10 -> log_softmax, for [N, 1, 8, 8]."""

    def __init__(self):
        super().__init__(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10), nn.LogSoftmax(dim=1))

    def loss(self, log_probs, target):
        return nn.functional.nll_loss(log_probs, target)


def make_model(lenet5=False):
    torch.manual_seed(0)
    model = LeNet5(impl="torch", input_shape=(1, 16, 16), num_classes=10) if lenet5 else TinyNet()
    return model.double()


def make_batches(side, count=5, size=8):
    generator = torch.Generator().manual_seed(1)
    return [(torch.randn(size, 1, side, side, dtype=torch.float64, generator=generator),
             torch.randint(0, 10, (size,), generator=generator)) for _ in range(count)]


MODEL, BATCHES = make_model(), make_batches(8)
LENET5, LENET5_BATCHES = make_model(lenet5=True), make_batches(16)


pytestmark = pytest.mark.usefixtures("one_thread")  # many tiny passes: threads would only add contention


def compute_grads(model, t):
    images, labels = (LENET5_BATCHES if isinstance(model, LeNet5) else BATCHES)[t % len(BATCHES)]
    model.zero_grad(set_to_none=True)
    model.loss(model(images), labels).backward()


def train(make_optimizer, make_scheduler=None, steps=STEPS, model=None, before_step=None):
    """Run ``steps`` iterations on ``model`` (a copy of MODEL by default); returns (model, optimizer, scheduler)."""
    model = model if model is not None else copy.deepcopy(MODEL)
    optimizer = make_optimizer(model)
    scheduler = make_scheduler(optimizer) if make_scheduler else None
    for t in range(steps):
        compute_grads(model, t)
        if before_step:
            before_step(model, optimizer, t)
        optimizer.step()
        if scheduler:
            scheduler.step()
    return model, optimizer, scheduler


def params(model):
    return [p.detach().clone() for p in model.parameters()]


def assert_params_close(candidate, reference, start=MODEL, tol=TOL):
    for (name, a), b, b0 in zip(candidate.named_parameters(), reference.parameters(), start.parameters()):
        rel = ((a - b).abs().max() / b.abs().max()).item()
        assert rel <= tol, f"{name}: max rel {rel:.3e} > {tol:.0e}"
        assert not torch.equal(b, b0), f"{name} did not move: the comparison would be vacuous"


def lambda_lr(optimizer, gamma=GAMMA, power=POWER):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: 1 / (1 + gamma * t) ** power)


# --- parity with torch.optim.SGD -----------------------------------------------------------------

CONSTANT_LR_CASES = {
    "plain": dict(momentum=0.0, weight_decay=0.0),
    "momentum_0.5": dict(momentum=0.5, weight_decay=0.0),
    "momentum_0.9": dict(momentum=0.9, weight_decay=0.0),
    "weight_decay": dict(momentum=0.0, weight_decay=1e-2),
    "momentum_weight_decay": dict(momentum=0.9, weight_decay=1e-2),
}


@pytest.mark.parametrize("case", CONSTANT_LR_CASES)
def test_constant_lr_matches_torch(case):
    """Constant lr: theta = lr * v at every step, so the handout form is torch's SGD."""
    kwargs = CONSTANT_LR_CASES[case]
    ours, _, _ = train(lambda m: SGD(m.parameters(), lr=EPS, **kwargs))
    ref, _, _ = train(lambda m: torch.optim.SGD(m.parameters(), lr=EPS, **kwargs))
    assert_params_close(ours, ref)


def test_lenet5_momentum_weight_decay_matches_torch():
    kwargs = CONSTANT_LR_CASES["momentum_weight_decay"]
    ours, _, _ = train(lambda m: SGD(m.parameters(), lr=EPS, **kwargs), model=copy.deepcopy(LENET5))
    ref, _, _ = train(lambda m: torch.optim.SGD(m.parameters(), lr=EPS, **kwargs), model=copy.deepcopy(LENET5))
    assert_params_close(ours, ref, start=LENET5)


def test_weight_decay_groups_match_torch():
    """Weights-only decay (seed 003's param.w) through param groups, as with torch."""
    ours, _, _ = train(lambda m: SGD(weight_decay_groups(m, 1e-2), lr=EPS, momentum=0.5))
    ref, _, _ = train(lambda m: torch.optim.SGD(weight_decay_groups(m, 1e-2), lr=EPS, momentum=0.5))
    all_decayed, _, _ = train(lambda m: SGD(m.parameters(), lr=EPS, momentum=0.5, weight_decay=1e-2))
    assert_params_close(ours, ref)
    assert not torch.allclose(all_decayed[3].bias, ours[3].bias, rtol=1e-9, atol=0)
    groups = weight_decay_groups(MODEL, 0.1)
    assert [len(g["params"]) for g in groups] == [2, 2] and [g["weight_decay"] for g in groups] == [0.1, 0.0]


@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_schedule_without_momentum_matches_torch_lambda_lr(weight_decay):
    """mu = 0: w -= alpha_t (g + lambda w) in both, so eq. 11 equals torch + LambdaLR."""
    ours, _, _ = train(lambda m: SGD(m.parameters(), lr=EPS, weight_decay=weight_decay),
                       lambda o: InverseDecay(o, GAMMA, POWER))
    ref, _, _ = train(lambda m: torch.optim.SGD(m.parameters(), lr=EPS, weight_decay=weight_decay), lambda_lr)
    assert_params_close(ours, ref)


def test_inverse_decay_is_eq_11_and_lambda_lr():
    model = copy.deepcopy(MODEL)
    ours = InverseDecay(SGD(model.parameters(), lr=EPS), GAMMA, POWER)
    ref = lambda_lr(torch.optim.SGD(model.parameters(), lr=EPS))
    for t in range(STEPS):
        assert ours.get_last_lr() == ref.get_last_lr()
        assert ours.get_last_lr()[0] == pytest.approx(EPS / (1 + GAMMA * t) ** POWER, rel=1e-15)
        ours.optimizer.step()
        ref.optimizer.step()
        ours.step()
        ref.step()


@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_handout_momentum_with_schedule_is_torch_on_scaled_gradients(momentum):
    """With momentum and a changing lr the exact correspondence is: handout(alpha_t, mu, lambda)
    == torch.optim.SGD(lr=1, mu, weight_decay=lambda * alpha_t) fed the gradients alpha_t * dl/dw."""
    lam = 1e-2
    ours, _, _ = train(lambda m: SGD(m.parameters(), lr=EPS, momentum=momentum, weight_decay=lam),
                       lambda o: InverseDecay(o, GAMMA, POWER))

    def scale(model, optimizer, t):
        alpha = EPS / (1 + GAMMA * t) ** POWER
        for p in model.parameters():
            p.grad.mul_(alpha)
        optimizer.param_groups[0]["weight_decay"] = lam * alpha

    ref, _, _ = train(lambda m: torch.optim.SGD(m.parameters(), lr=1.0, momentum=momentum), before_step=scale)
    assert_params_close(ours, ref)


def reference_loop(form, lr, momentum, weight_decay, gamma, power, steps=STEPS):
    """The handouts' equations written out on plain tensors, outside any optimizer class."""
    model = copy.deepcopy(MODEL)
    ws = list(model.parameters())
    buffers = [torch.zeros_like(w) for w in ws]
    for t in range(steps):
        compute_grads(model, t)
        alpha = lr / (1 + gamma * t) ** power                                   # eq. 11
        with torch.no_grad():
            for w, buf in zip(ws, buffers):
                g = w.grad + weight_decay * w                                   # eq. 13
                if form == "handout":
                    buf.copy_(momentum * buf + alpha * g)                       # eq. 9
                    w.copy_(w - buf)                                            # eq. 10
                else:
                    buf.copy_(momentum * buf + (1 - momentum) * g)              # eq. 17
                    w.copy_(w - alpha * buf)                                    # eq. 18
    return model


@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_handout_momentum_with_schedule_matches_eqs_9_to_13_and_differs_from_torch(momentum):
    lam = 1e-2
    ours, _, _ = train(lambda m: SGD(m.parameters(), lr=EPS, momentum=momentum, weight_decay=lam),
                       lambda o: InverseDecay(o, GAMMA, POWER))
    assert_params_close(ours, reference_loop("handout", EPS, momentum, lam, GAMMA, POWER))
    # torch + LambdaLR scales the whole history by the current lr: a genuinely different trajectory
    torch_run, _, _ = train(lambda m: torch.optim.SGD(m.parameters(), lr=EPS, momentum=momentum, weight_decay=lam),
                            lambda_lr)
    rel = max(((a - b).abs().max() / b.abs().max()).item()
              for a, b in zip(ours.parameters(), torch_run.parameters()))
    assert rel > 1e-4


@pytest.mark.parametrize("momentum", [0.5, 0.9])
@pytest.mark.parametrize("weight_decay", [0.0, 1e-2])
def test_moving_average_matches_eqs_17_18(momentum, weight_decay):
    ours, _, _ = train(lambda m: SGD(m.parameters(), lr=EPS, momentum=momentum, weight_decay=weight_decay,
                                     momentum_form="moving_average"),
                       lambda o: InverseDecay(o, GAMMA, POWER))
    assert_params_close(ours, reference_loop("moving_average", EPS, momentum, weight_decay, GAMMA, POWER))


@pytest.mark.parametrize("momentum", [0.5, 0.9])
def test_moving_average_is_torch_with_lr_times_one_minus_mu(momentum):
    """m_t = (1 - mu) v_t whatever the rates, so eqs. 17-18 with eps equal torch with eps * (1 - mu),
    schedule included."""
    ours, _, _ = train(lambda m: SGD(m.parameters(), lr=EPS, momentum=momentum, weight_decay=1e-2,
                                     momentum_form="moving_average"),
                       lambda o: InverseDecay(o, GAMMA, POWER))
    ref, _, _ = train(lambda m: torch.optim.SGD(m.parameters(), lr=EPS * (1 - momentum), momentum=momentum,
                                                weight_decay=1e-2), lambda_lr)
    assert_params_close(ours, ref)


# --- numbers worked by hand ----------------------------------------------------------------------

def scalar_steps(form, steps=2):
    """l = w^2, so dl/dw = 2w; w0 = 2, eps = 0.1, mu = 0.5, lambda = 0.1, gamma = 1, p = 1."""
    w = torch.nn.Parameter(torch.tensor([2.0], dtype=torch.float64))
    optimizer = SGD([w], lr=0.1, momentum=0.5, weight_decay=0.1, momentum_form=form)
    scheduler = InverseDecay(optimizer, gamma=1.0, power=1.0)
    trace = []
    for _ in range(steps):
        optimizer.zero_grad()
        (w ** 2).sum().backward()
        optimizer.step()
        scheduler.step()
        trace.append((w.item(), optimizer.state[w][{"handout": "theta", "moving_average": "m"}[form]].item()))
    return trace


def test_known_answer_handout():
    # t = 0: alpha = 0.1/(1+0)^1 = 0.1;  g = 2*2 + 0.1*2 = 4.2
    #        theta = 0.5*0 + 0.1*4.2 = 0.42;  w = 2 - 0.42 = 1.58
    # t = 1: alpha = 0.1/(1+1)^1 = 0.05;  g = 2*1.58 + 0.1*1.58 = 3.318
    #        theta = 0.5*0.42 + 0.05*3.318 = 0.21 + 0.1659 = 0.3759;  w = 1.58 - 0.3759 = 1.2041
    (w1, theta1), (w2, theta2) = scalar_steps("handout")
    assert theta1 == pytest.approx(0.42, abs=1e-14) and w1 == pytest.approx(1.58, abs=1e-14)
    assert theta2 == pytest.approx(0.3759, abs=1e-14) and w2 == pytest.approx(1.2041, abs=1e-14)


def test_known_answer_moving_average():
    # t = 0: alpha = 0.1;  g = 4.2;  m = 0.5*0 + 0.5*4.2 = 2.1;  w = 2 - 0.1*2.1 = 1.79
    # t = 1: alpha = 0.05; g = 2.1*1.79 = 3.759;  m = 0.5*2.1 + 0.5*3.759 = 2.9295;
    #        w = 1.79 - 0.05*2.9295 = 1.79 - 0.146475 = 1.643525
    (w1, m1), (w2, m2) = scalar_steps("moving_average")
    assert m1 == pytest.approx(2.1, abs=1e-14) and w1 == pytest.approx(1.79, abs=1e-14)
    assert m2 == pytest.approx(2.9295, abs=1e-14) and w2 == pytest.approx(1.643525, abs=1e-14)


# --- state_dict ----------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["handout", "moving_average"])
def test_state_dict_round_trip(form):
    """25 steps, save (weights_only-loadable), load into a fresh optimizer and scheduler, 25 more
    == 50 straight, bit for bit."""
    def make_optimizer(m):
        return SGD(weight_decay_groups(m, 1e-2), lr=EPS, momentum=0.9, momentum_form=form)

    def make_scheduler(o):
        return InverseDecay(o, GAMMA, POWER)

    straight, straight_opt, _ = train(make_optimizer, make_scheduler)
    half, optimizer, scheduler = train(make_optimizer, make_scheduler, steps=25)
    buffer = io.BytesIO()
    torch.save({"model": half.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()}, buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    resumed = copy.deepcopy(MODEL)
    resumed.load_state_dict(state["model"])
    fresh_optimizer = make_optimizer(resumed)
    fresh_scheduler = make_scheduler(fresh_optimizer)
    fresh_optimizer.load_state_dict(state["optimizer"])
    fresh_scheduler.load_state_dict(state["scheduler"])
    assert fresh_scheduler.get_last_lr() == scheduler.get_last_lr()
    for t in range(25, STEPS):
        compute_grads(resumed, t)
        fresh_optimizer.step()
        fresh_scheduler.step()
    for a, b in zip(params(resumed), params(straight)):
        assert torch.equal(a, b)
    for a, b in zip(fresh_optimizer.state_dict()["state"].values(), straight_opt.state_dict()["state"].values()):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_step_is_from_scratch(monkeypatch):
    """step() never reaches torch's SGD code."""
    def forbidden(*args, **kwargs):
        raise AssertionError("torch's SGD was called")

    monkeypatch.setattr(torch.optim.SGD, "step", forbidden)
    monkeypatch.setattr(torch.optim._functional, "sgd", forbidden)
    monkeypatch.setattr(sys.modules["torch.optim.sgd"], "sgd", forbidden)
    for form in ("handout", "moving_average"):
        train(lambda m: SGD(m.parameters(), lr=EPS, momentum=0.9, weight_decay=1e-2, momentum_form=form), steps=2)


# --- bad arguments -------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, name, expected, given", [
    (dict(lr=-0.1), "lr", ">= 0", "-0.1"),
    (dict(lr=float("nan")), "lr", ">= 0", "nan"),
    (dict(lr="0.1"), "lr", ">= 0", "'0.1'"),
    (dict(momentum=1.0), "momentum", "[0, 1)", "1.0"),
    (dict(momentum=-0.5), "momentum", "[0, 1)", "-0.5"),
    (dict(weight_decay=-1e-4), "weight_decay", ">= 0", "-0.0001"),
    (dict(momentum_form="nesterov"), "momentum_form", "('handout', 'moving_average')", "'nesterov'"),
])
def test_bad_arguments(kwargs, name, expected, given):
    with pytest.raises(ValueError) as error:
        SGD(MODEL.parameters(), **kwargs)
    message = str(error.value)
    assert f"'{name}'" in message and expected in message and given in message, message


def test_bad_group_argument():
    with pytest.raises(ValueError, match=r"argument 'momentum' expected a number in \[0, 1\), got 1.5"):
        SGD([{"params": list(MODEL[3].parameters()), "momentum": 1.5}], lr=EPS)


@pytest.mark.parametrize("kwargs, name", [(dict(gamma=-1.0, power=1.0), "gamma"),
                                          (dict(gamma=1.0, power=-0.5), "power")])
def test_bad_schedule_arguments(kwargs, name):
    with pytest.raises(ValueError, match=f"argument '{name}' expected a finite number >= 0, got -"):
        InverseDecay(SGD(MODEL.parameters(), lr=EPS), **kwargs)

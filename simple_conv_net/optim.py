"""SGD with momentum and L2 weight decay (seed 003, section 5.5), written from scratch.

Seed 003, eqs. 9-13, for every parameter w with gradient dl/dw, at iteration t = 0, 1, 2, ...:

    alpha_t = eps / (1 + gamma * t) ** p                   eq. 11   (InverseDecay below)
    g       = dl/dw + lambda * w                           eq. 13   (gradient of eq. 12's l + lambda/2 sum w^2)
    theta   = mu * theta + alpha_t * g                     eq. 9    (theta starts at 0; the handout's param_winc)
    w       = w - theta                                    eq. 10

``momentum_form='moving_average'`` uses seed 004's eqs. 17-18 instead of eqs. 9-10:

    m = mu * m + (1 - mu) * g                              eq. 17   (m starts at 0; g includes weight decay)
    w = w - alpha_t * m                                    eq. 18

Relation to torch.optim.SGD (dampening 0, nesterov off), which keeps v = mu * v + g and steps
w = w - lr_t * v (v starts as g, i.e. at 0):

* Handout form: theta_t = sum_k mu^(t-k) alpha_k g_k, torch's step is lr_t * v_t = alpha_t sum_k mu^(t-k) g_k.
  They coincide, theta_t = lr * v_t at every step, exactly when the learning rate is constant
  (or mu = 0, where both are plain SGD: w -= alpha_t g). With momentum and a changing learning rate
  they differ: the handout weights each past gradient by the rate of the step that produced it,
  torch by the current rate. What does coincide is the gradient-scaled picture: the handout form
  with rates alpha_t equals torch.optim.SGD(lr=1, momentum=mu, weight_decay=lambda*alpha_t) fed the
  gradients alpha_t * dl/dw. The parity tests compare against torch (+ LambdaLR) for constant rates,
  for mu = 0 under eq. 11, and for that scaled form; the handout form with momentum under eq. 11 is
  checked against a hand-written loop of eqs. 9-13 (and shown to differ from torch + LambdaLR).
* Moving-average form: m_t = (1 - mu) v_t at every step whatever the rates, so it equals
  torch.optim.SGD(lr=eps * (1 - mu), momentum=mu) with the same schedule, constant or not. (It is
  not torch's dampening=mu, which starts its buffer at g rather than (1 - mu) g.)

Weight decay: seed 003 decays the weights param.w only; torch.optim.SGD decays every parameter of a
param group. ``weight_decay`` is a per-group option as in torch, so ``SGD(model.parameters(), ...)``
decays biases too (torch's behaviour), and ``SGD(weight_decay_groups(model, lam), ...)`` decays the
weights only (the handout's). ``lr``, ``momentum`` and ``momentum_form`` are per-group as well.

The learning-rate policy of eq. 11 is the scheduler ``InverseDecay`` (a torch LRScheduler), not an
optimizer option: the handout keeps it apart too (get_lr), it drives torch.optim.SGD the same way, and
the optimizer just uses each group's current ``lr`` as alpha_t. Call ``scheduler.step()`` once per
iteration, after ``optimizer.step()``, and checkpoint ``scheduler.state_dict()`` next to the
optimizer's. Both state dicts hold only tensors and plain Python values, so they load with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import nn

MOMENTUM_FORMS = ("handout", "moving_average")
_BUFFER = {"handout": "theta", "moving_average": "m"}


def _check_number(name: str, value, expected: str, ok) -> None:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or not ok(value):
        raise ValueError(f"argument '{name}' expected {expected}, got {value!r}")


def _check_group(lr, momentum, weight_decay, momentum_form) -> None:
    _check_number("lr", lr, "a finite number >= 0", lambda x: x >= 0)
    _check_number("momentum", momentum, "a number in [0, 1)", lambda x: 0 <= x < 1)
    _check_number("weight_decay", weight_decay, "a finite number >= 0", lambda x: x >= 0)
    if momentum_form not in MOMENTUM_FORMS:
        raise ValueError(f"argument 'momentum_form' expected one of {MOMENTUM_FORMS}, got {momentum_form!r}")


class SGD(torch.optim.Optimizer):
    """SGD with momentum (seed 003 eqs. 9-10, or seed 004 eqs. 17-18) and L2 weight decay (eqs. 12-13).

    SGD(params, lr=0.01, momentum=0.0, weight_decay=0.0, momentum_form='handout')

    params: an iterable of parameters or of param-group dicts (each may override lr, momentum,
    weight_decay and momentum_form). lr is eps, the rate alpha_t of the current step (InverseDecay
    changes it per iteration); momentum is mu, in [0, 1); weight_decay is lambda, >= 0.
    The per-parameter state holds the momentum buffer, 'theta' (handout) or 'm' (moving average);
    it starts at zero, and none is kept when momentum is 0.
    """

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, weight_decay: float = 0.0,
                 momentum_form: str = "handout"):
        _check_group(lr, momentum, weight_decay, momentum_form)
        defaults = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, momentum_form=momentum_form)
        super().__init__(params, defaults)

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        _check_group(group["lr"], group["momentum"], group["weight_decay"], group["momentum_form"])

    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns closure() if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            alpha, mu, lam, form = group["lr"], group["momentum"], group["weight_decay"], group["momentum_form"]
            for w in group["params"]:
                if w.grad is None:
                    continue
                if w.grad.is_sparse:
                    raise RuntimeError("SGD does not support sparse gradients")
                g = w.grad
                if lam != 0:
                    g = g.add(w, alpha=lam)                                    # eq. 13
                if mu == 0:
                    w.add_(g, alpha=-alpha)                                    # plain SGD: w -= alpha_t g
                    continue
                state = self.state[w]
                key = _BUFFER[form]
                if key not in state:
                    state[key] = torch.zeros_like(w, memory_format=torch.preserve_format)
                buffer = state[key]
                if form == "handout":
                    buffer.mul_(mu).add_(g, alpha=alpha)                       # eq. 9
                    w.sub_(buffer)                                             # eq. 10
                else:
                    buffer.mul_(mu).add_(g, alpha=1 - mu)                      # eq. 17
                    w.add_(buffer, alpha=-alpha)                               # eq. 18
        return loss


def weight_decay_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """Param groups that decay the weights only (seed 003: param.w): the conv and fully connected
    weight matrices, the parameters of 2 or more dimensions. Biases and batch norm's gamma and beta
    (1-D) get weight_decay 0. Pass to SGD or torch.optim.SGD in place of module.parameters()."""
    _check_number("weight_decay", weight_decay, "a finite number >= 0", lambda x: x >= 0)
    weights, biases = [], []
    for param in module.parameters():
        (weights if param.dim() >= 2 else biases).append(param)
    groups = [{"params": weights, "weight_decay": weight_decay}]
    if biases:
        groups.append({"params": biases, "weight_decay": 0.0})
    return groups


class InverseDecay(torch.optim.lr_scheduler.LRScheduler):
    """Seed 003 eq. 11: alpha_t = eps / (1 + gamma * t) ** p, eps each group's initial lr, t the iteration.

    t = 0 at the first optimizer step (the handout's get_lr(step) with step from 0), so call
    ``step()`` once per iteration after ``optimizer.step()``. Equals
    ``LambdaLR(optimizer, lambda t: 1 / (1 + gamma * t) ** p)`` and works with any optimizer;
    unlike LambdaLR its state_dict keeps gamma and p.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, gamma: float, power: float, last_epoch: int = -1):
        _check_number("gamma", gamma, "a finite number >= 0", lambda x: x >= 0)
        _check_number("power", power, "a finite number >= 0", lambda x: x >= 0)
        self.gamma, self.power = float(gamma), float(power)
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        return 1.0 / (1.0 + self.gamma * t) ** self.power

    def get_lr(self):
        return [base_lr * self.factor(self.last_epoch) for base_lr in self.base_lrs]

    def _get_closed_form_lr(self):
        return self.get_lr()

    def set_policy(self, lr: float, gamma: float, power: float) -> None:
        """Make eps = ``lr``, gamma and p the policy's from the current iteration t on (a resumed run
        given new values): every group's rate becomes lr / (1 + gamma t)^p now. Setting the values it
        already has changes nothing, to the bit."""
        _check_number("lr", lr, "a finite number >= 0", lambda x: x >= 0)
        _check_number("gamma", gamma, "a finite number >= 0", lambda x: x >= 0)
        _check_number("power", power, "a finite number >= 0", lambda x: x >= 0)
        self.gamma, self.power = float(gamma), float(power)
        self.base_lrs = [float(lr)] * len(self.optimizer.param_groups)
        for group, rate in zip(self.optimizer.param_groups, self.get_lr()):
            group["initial_lr"], group["lr"] = float(lr), rate
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

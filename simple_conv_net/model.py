"""SimpleConvNet (seed 000, Fig. 1), written once against an ops backend.

    x [N, 1, 28, 28]
    -> conv    conv_layer, 20 filters 5x5, stride 1      [N, 20, 24, 24]   eq. 1
    -> pool    max pool 2x2, stride 2                    [N, 20, 12, 12]   eq. 2
    -> reshape flatten                                   [N, 2880]         eqs. 3-4
    -> fc1     fc_layer1, 2880 -> 500                    [N, 500]          eq. 5
    -> relu                                              [N, 500]
    -> fc2     fc_layer2, 500 -> 10                      [N, 10]           eq. 5
    -> output  log_softmax                               [N, 10]   (the loss is nll: eq. 6 for its delta)

The parameters are held by nn.Conv2d / nn.Linear modules named as in the homework's
training script, so they are initialised as PyTorch initialises those layers and one
state_dict (``conv_layer.weight`` ... ``fc_layer2.bias``) loads into every impl, the
homework's own checkpoints included. Only the forward arithmetic changes with ``impl``.
"""

from __future__ import annotations

import torch
from torch import nn

from .backends import check_impl, get_ops

INTERMEDIATES = ("conv", "pool", "reshape", "fc1", "relu", "fc2", "output")


class SimpleConvNet(nn.Module):
    def __init__(self, impl: str = "torch"):
        super().__init__()
        self.conv_layer = nn.Conv2d(in_channels=1, out_channels=20, kernel_size=5, stride=1, padding=0)
        self.fc_layer1 = nn.Linear(in_features=20 * 12 * 12, out_features=500)
        self.fc_layer2 = nn.Linear(in_features=500, out_features=10)
        self.impl = impl

    @property
    def impl(self) -> str:
        return self._impl

    @impl.setter
    def impl(self, impl: str) -> None:
        self._impl = check_impl(impl)
        self.ops = get_ops(impl)

    def layers(self):
        """The network as a table of (output name, module holding its parameters or None,
        function of (ops, layer input))."""
        return (
            ("conv", "conv_layer", lambda ops, a: ops.conv2d(a, self.conv_layer.weight, self.conv_layer.bias)),
            ("pool", None, lambda ops, a: ops.max_pool2d(a, kernel_size=2, stride=2)),
            ("reshape", None, lambda ops, a: ops.flatten(a, 1)),
            ("fc1", "fc_layer1", lambda ops, a: ops.linear(a, self.fc_layer1.weight, self.fc_layer1.bias)),
            ("relu", None, lambda ops, a: ops.relu(a)),
            ("fc2", "fc_layer2", lambda ops, a: ops.linear(a, self.fc_layer2.weight, self.fc_layer2.bias)),
            ("output", None, lambda ops, a: ops.log_softmax(a, dim=1)),
        )

    def forward(self, x: torch.Tensor, return_intermediates: bool = False):
        """x [N, 1, 28, 28] -> log-probabilities [N, 10]; with return_intermediates also a dict
        {name: tensor} of every layer's output, in INTERMEDIATES order."""
        intermediates = {}
        for name, _, layer in self.layers():
            x = intermediates[name] = layer(self.ops, x)
        return (x, intermediates) if return_intermediates else x

    def loss(self, log_probs: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Negative log-likelihood with this model's impl."""
        return self.ops.nll_loss(log_probs, target, reduction=reduction)

    def extra_repr(self) -> str:
        return f"impl={self.impl!r}"

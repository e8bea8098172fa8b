"""The networks, each written once against an ops backend; ``impl`` picks the arithmetic.

A network is a table of layers, ``(output name, module holding its parameters or None,
function of (ops, layer input))``. ``forward`` runs the table with the ops of ``impl``;
the parity report runs it layer by layer. Parameters are held by nn.Conv2d / nn.Linear
modules, so they are initialised as PyTorch initialises those layers and one state_dict
loads into every impl.

SimpleConvNet (seed 000, Fig. 1), for x [N, 1, 28, 28]:

    conv    conv_layer, 20 filters 5x5, stride 1      [N, 20, 24, 24]   eq. 1
    pool    max pool 2x2, stride 2                    [N, 20, 12, 12]   eq. 2
    reshape flatten                                   [N, 2880]         eqs. 3-4
    fc1     fc_layer1, 2880 -> 500                    [N, 500]          eq. 5
    relu                                              [N, 500]
    fc2     fc_layer2, 500 -> 10                      [N, 10]           eq. 5
    output  log_softmax                               [N, 10]   (the loss is nll: eq. 6 for its delta)

LeNet (seed 003, table 2) and LeNet-5 (seed 001, question 4) are below, in the same form.
"""

from __future__ import annotations

import torch
from torch import nn

from . import checks
from .backends import check_impl, get_ops


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class OpsNet(nn.Module):
    """A network whose layers call the ops of ``impl`` ('torch', 'vector' or 'scalar')."""

    def __init__(self, impl: str, input_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.impl = impl

    @property
    def impl(self) -> str:
        return self._impl

    @impl.setter
    def impl(self, impl: str) -> None:
        self._impl = check_impl(impl)
        self.ops = get_ops(impl)

    def layers(self):
        """The table of (output name, parameter module name or None, function of (ops, input))."""
        raise NotImplementedError

    def intermediates(self) -> tuple[str, ...]:
        return tuple(name for name, _, _ in self.layers())

    def forward(self, x: torch.Tensor, return_intermediates: bool = False):
        """x [N, *input_shape] -> log-probabilities [N, num_classes]; with return_intermediates
        also a dict {name: tensor} of every layer's output, in table order."""
        intermediates = {}
        for name, _, layer in self.layers():
            x = intermediates[name] = layer(self.ops, x)
        return (x, intermediates) if return_intermediates else x

    def loss(self, log_probs: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """Negative log-likelihood with this model's impl."""
        return self.ops.nll_loss(log_probs, target, reduction=reduction)

    def extra_repr(self) -> str:
        return f"impl={self.impl!r}, input_shape={self.input_shape}"


def conv(module: nn.Conv2d):
    return lambda ops, a: ops.conv2d(a, module.weight, module.bias, module.stride, module.padding)


def linear(module: nn.Linear):
    return lambda ops, a: ops.linear(a, module.weight, module.bias)


def max_pool(kernel_size: int, stride: int):
    return lambda ops, a: ops.max_pool2d(a, kernel_size=kernel_size, stride=stride)


def batch_norm(module: nn.modules.batchnorm._BatchNorm):
    """The module's running statistics move in training mode (model.train()) and are used in eval mode; as
    nn.BatchNorm, each training step counts its batch in num_batches_tracked, and momentum=None makes the running
    statistics the cumulative average of every batch's (checks.running_average_factor)."""
    def layer(ops, a):
        momentum = module.momentum
        if module.training and module.num_batches_tracked is not None:
            module.num_batches_tracked.add_(1)
            momentum = checks.running_average_factor(module.momentum, module.num_batches_tracked)
        return ops.batch_norm(a, module.running_mean, module.running_var, module.weight, module.bias,
                              module.training, momentum, module.eps)
    return layer


def relu(ops, a):
    return ops.relu(a)


def flatten(ops, a):
    return ops.flatten(a, 1)


def log_softmax(ops, a):
    return ops.log_softmax(a, dim=1)


class SimpleConvNet(OpsNet):
    def __init__(self, impl: str = "torch"):
        super().__init__(impl, (1, 28, 28), 10)
        self.conv_layer = nn.Conv2d(in_channels=1, out_channels=20, kernel_size=5, stride=1, padding=0)
        self.fc_layer1 = nn.Linear(in_features=20 * 12 * 12, out_features=500)
        self.fc_layer2 = nn.Linear(in_features=500, out_features=10)

    def layers(self):
        return (
            ("conv", "conv_layer", conv(self.conv_layer)),
            ("pool", None, max_pool(2, 2)),
            ("reshape", None, flatten),
            ("fc1", "fc_layer1", linear(self.fc_layer1)),
            ("relu", None, relu),
            ("fc2", "fc_layer2", linear(self.fc_layer2)),
            ("output", None, log_softmax),
        )


class LeNet(OpsNet):
    """Seed 003, table 2: conv 20 (5x5) -> max pool 2/2 -> conv 50 (5x5) -> max pool 2/2
    -> IP 500 -> ReLU -> IP 10 -> softmax. For [N, 1, 28, 28]: 24 -> 12 -> 8 -> 4, so IP1 sees 50*4*4."""

    def __init__(self, impl: str = "torch", input_shape=(1, 28, 28), num_classes: int = 10):
        super().__init__(impl, input_shape, num_classes)
        channels, height, width = input_shape
        self.conv1 = nn.Conv2d(channels, 20, kernel_size=5)
        self.conv2 = nn.Conv2d(20, 50, kernel_size=5)
        h, w = (conv_output_size(conv_output_size(s, 5) // 2, 5) // 2 for s in (height, width))
        self.ip1 = nn.Linear(50 * h * w, 500)
        self.ip2 = nn.Linear(500, num_classes)

    def layers(self):
        return (
            ("conv1", "conv1", conv(self.conv1)),
            ("pool1", None, max_pool(2, 2)),
            ("conv2", "conv2", conv(self.conv2)),
            ("pool2", None, max_pool(2, 2)),
            ("reshape", None, flatten),
            ("ip1", "ip1", linear(self.ip1)),
            ("relu1", None, relu),
            ("ip2", "ip2", linear(self.ip2)),
            ("output", None, log_softmax),
        )


class LeNet5(OpsNet):
    """Seed 001, question 4: conv 6 (5x5) -> ReLU -> max pool 2/2 -> conv 16 (5x5) -> ReLU -> max pool 2/2
    -> FC 120 -> ReLU -> FC 84 -> ReLU -> FC n_classes. For [N, 3, 32, 32] (CIFAR-10) FC1 sees 16*5*5,
    for [N, 1, 28, 28] 16*4*4. With batch_norm (seed 001, question 2) each conv and each hidden FC
    layer is followed by batch normalisation (bn1 ... bn4) before its ReLU; those layers then have
    no bias, as batch norm's beta takes its place (in training mode a bias there is subtracted
    again with the batch mean, so its gradient would be identically zero)."""

    def __init__(self, impl: str = "torch", input_shape=(3, 32, 32), num_classes: int = 10,
                 batch_norm: bool = False):
        super().__init__(impl, input_shape, num_classes)
        channels, height, width = input_shape
        bias = not batch_norm
        self.conv1 = nn.Conv2d(channels, 6, kernel_size=5, bias=bias)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5, bias=bias)
        h, w = (conv_output_size(conv_output_size(s, 5) // 2, 5) // 2 for s in (height, width))
        self.fc1 = nn.Linear(16 * h * w, 120, bias=bias)
        self.fc2 = nn.Linear(120, 84, bias=bias)
        self.fc3 = nn.Linear(84, num_classes)
        self.batch_norm = batch_norm
        if batch_norm:
            self.bn1, self.bn2 = nn.BatchNorm2d(6), nn.BatchNorm2d(16)
            self.bn3, self.bn4 = nn.BatchNorm1d(120), nn.BatchNorm1d(84)

    def layers(self):
        def normalised(index, name, module, make):
            """(name, module, fn) of a layer, then its batch norm when the net has them."""
            layer = [(name, module, make)]
            if self.batch_norm:
                bn = f"bn{index}"
                layer.append((bn, bn, batch_norm(getattr(self, bn))))
            return layer

        return (
            *normalised(1, "conv1", "conv1", conv(self.conv1)),
            ("relu1", None, relu),
            ("pool1", None, max_pool(2, 2)),
            *normalised(2, "conv2", "conv2", conv(self.conv2)),
            ("relu2", None, relu),
            ("pool2", None, max_pool(2, 2)),
            ("reshape", None, flatten),
            *normalised(3, "fc1", "fc1", linear(self.fc1)),
            ("relu3", None, relu),
            *normalised(4, "fc2", "fc2", linear(self.fc2)),
            ("relu4", None, relu),
            ("fc3", "fc3", linear(self.fc3)),
            ("output", None, log_softmax),
        )


MODELS = {"simple": SimpleConvNet, "lenet": LeNet, "lenet5": LeNet5}


def build_model(name: str, impl: str = "torch", input_shape=(1, 28, 28), num_classes: int = 10,
                batch_norm: bool = False) -> OpsNet:
    """One of MODELS by name; SimpleConvNet takes only MNIST's [1, 28, 28] with 10 classes;
    batch_norm is an option of LeNet-5 alone."""
    if name not in MODELS:
        raise ValueError(f"argument 'model' expected one of {tuple(MODELS)}, got {name!r}")
    if batch_norm and name != "lenet5":
        raise ValueError(f"argument 'batch_norm' is an option of model 'lenet5' only, got model {name!r}")
    if batch_norm:
        return LeNet5(impl, tuple(input_shape), num_classes, batch_norm=True)
    if name == "simple":
        if tuple(input_shape) != (1, 28, 28) or num_classes != 10:
            raise ValueError(f"model 'simple' expects input_shape (1, 28, 28) and 10 classes (MNIST), "
                             f"got {tuple(input_shape)} and {num_classes}")
        return SimpleConvNet(impl)
    return MODELS[name](impl, tuple(input_shape), num_classes)

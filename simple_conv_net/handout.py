"""The homework's own function names (seed 000, ``simple_conv_net_func.py``), backed by the ops.

A student's training script and tests run against this project by changing one import::

    from simple_conv_net.handout import diff_mse, conv2d_vector, pool2d_vector, ...

Every layer function keeps the handout's argument list, ``device`` included, and runs the
vector or scalar op with its hand-written backward (so autograd works through them).
"""

from __future__ import annotations

import torch

from .backends import get_ops
from .window import Window


def diff_mse(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared difference of two tensors of the same number of elements, as a float."""
    if x.numel() != y.numel():
        raise ValueError(f"diff_mse(): arguments 'x' and 'y' expected the same number of elements, "
                         f"got {x.numel()} and {y.numel()}")
    return torch.mean((x.reshape(-1) - y.reshape(-1)) ** 2).item()


def _layers(impl: str):
    """The handout's five layer functions for one impl."""

    def conv2d(x_in, conv_weight, conv_bias, device="cpu"):
        """x_in [N, C_in, S_in, S_in], conv_weight [C_out, C_in, K, K], conv_bias [C_out]
        -> [N, C_out, S_in - K + 1, S_in - K + 1] (stride 1, no padding)."""
        return get_ops(impl).conv2d(x_in.to(device), conv_weight.to(device), conv_bias.to(device))

    def pool2d(a, device="cpu"):
        """a [N, C, S, S] -> [N, C, S // 2, S // 2]: 2x2 max pooling, stride 2 (eq. 2)."""
        return get_ops(impl).max_pool2d(a.to(device), kernel_size=2, stride=2)

    def relu(a, device="cpu"):
        """max(a, 0) elementwise."""
        return get_ops(impl).relu(a.to(device))

    def reshape(a, device="cpu"):
        """a [N, C, S, S] -> [N, C*S*S] (eqs. 3-4)."""
        return get_ops(impl).flatten(a.to(device), 1)

    def fc_layer(a, weight, bias, device="cpu"):
        """a [N, D], weight [P, D], bias [P] -> [N, P] (eq. 5)."""
        return get_ops(impl).linear(a.to(device), weight.to(device), bias.to(device))

    return conv2d, pool2d, relu, reshape, fc_layer


conv2d_vector, pool2d_vector, relu_vector, reshape_vector, fc_layer_vector = _layers("vector")
conv2d_scalar, pool2d_scalar, relu_scalar, reshape_scalar, fc_layer_scalar = _layers("scalar")


def im2col(X: torch.Tensor, kernel_size: int, device="cpu") -> torch.Tensor:
    """X [N, C_in, S_in, S_in] -> columns [N, C_in*K*K, S_out*S_out] (stride 1, no padding).

    columns[n, (c, i, j), (m, l)] = X[n, c, m + i, l + j]: each column is one K x K window
    of every input channel, so conv = conv_weight2rows(w) @ columns (seed 000, task 2d).
    """
    from vector_ops.conv2d import im2col as vector_im2col

    n, c_in, h, w = X.shape
    geometry = Window.of((n, c_in, h, w), c_in, (kernel_size, kernel_size), (1, 1), (0, 0))
    return vector_im2col(X.to(device), geometry)


def conv_weight2rows(conv_weight: torch.Tensor) -> torch.Tensor:
    """conv_weight [C_out, C_in, K, K] -> [C_out, C_in*K*K], each filter one row."""
    return conv_weight.reshape(conv_weight.shape[0], -1)

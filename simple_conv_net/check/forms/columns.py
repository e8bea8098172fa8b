"""Seed 003's data in columns, to and from the checker's NCHW tensors (the lenet-dict form's conversions).

CMU 10-601 homework 7 and its Python 3 port (SFU CMPT 412 project 1) pass a layer's data as a dict
{height, width, channel, batch_size, data} with ``data`` [h w c, batch]: one column per sample. The
handouts disagree on the order of the values inside a column (docs/checking.md, "The lenet-dict form"), so each
conversion takes a *layout*:

hwc-C   C order of (height, width, channel): the channel fastest. The 10-601 Python handout's
        given code (``np.reshape(column, (h, w, c))``).
hwc-F   Fortran order of (height, width, channel): the height fastest. The Octave handout and the
        port's given code (``order='F'``); C order of (channel, width, height).
chw-C   C order of (channel, height, width): the width fastest. The 10-601 QnA text and the port's
        hint ``im2col_conv_batch``; a sample of an NCHW tensor as it lies in memory.

A convolution's ``w`` is [k k c, num], its rows ordered as the layout orders a window (kernel row,
kernel column, channel), so a convolution written for one layout reads its weights in that order
too. An inner product's ``w`` is [inputs, outputs]: torch's linear weight transposed. ``b`` is
[num] (10-601) or [1, num] (the port).

Pure functions of torch tensors and numpy arrays, float64 throughout; imported by the child.
"""

from __future__ import annotations

import numpy as np
import torch

LAYOUTS = ("hwc-C", "hwc-F", "chw-C")
LAYOUT_OF = {"cmu10601": "hwc-C", "port": "hwc-F"}     # the layout each variant's given code uses
# Each layout as the permutation of a sample's (c, h, w) axes whose C-order flattening is the column.
_AXES = {"hwc-C": (1, 2, 0), "hwc-F": (0, 2, 1), "chw-C": (0, 1, 2)}


def _check_layout(layout: str) -> None:
    if layout not in LAYOUTS:
        raise ValueError(f"layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}")


def to_columns(x: torch.Tensor, layout: str) -> np.ndarray:
    """x [N, C, H, W] -> data [H W C, N] (float64), each column a sample in ``layout``'s order."""
    _check_layout(layout)
    if x.dim() != 4:
        raise ValueError(f"x: expected a tensor [N, C, H, W], got shape {list(x.shape)}")
    n = x.shape[0]
    axes = (0,) + tuple(a + 1 for a in _AXES[layout])
    return x.detach().to(torch.float64).permute(axes).reshape(n, -1).T.contiguous().numpy().copy()


def from_columns(data, height: int, width: int, channel: int, layout: str) -> torch.Tensor:
    """data [H W C, N] in ``layout``'s order -> x [N, C, H, W] (float64); a ValueError if the sizes do not fit."""
    _check_layout(layout)
    data = torch.as_tensor(np.asarray(data, dtype=np.float64))
    size = height * width * channel
    if data.dim() == 1:
        data = data[:, None]
    if data.dim() != 2 or data.shape[0] != size:
        raise ValueError(f"data: expected [height * width * channel = {size}, batch], got shape {list(data.shape)}")
    sizes = dict(zip("chw", (channel, height, width)))
    order = ["chw"[a] for a in _AXES[layout]]                  # the column's axes, slowest first
    samples = data.T.reshape(data.shape[1], *(sizes[a] for a in order))
    back = [order.index(a) + 1 for a in "chw"]
    return samples.permute(0, *back).contiguous()


def conv_weight_rows(weight: torch.Tensor, layout: str) -> np.ndarray:
    """torch's conv weight [num, C, K, K] -> w [K K C, num], the rows a window of ``layout`` pairs with."""
    _check_layout(layout)
    axes = tuple(a + 1 for a in _AXES[layout]) + (0,)
    return weight.detach().to(torch.float64).permute(axes).reshape(-1, weight.shape[0]).contiguous().numpy().copy()


def conv_weight_from_rows(w, channel: int, k: int, layout: str) -> torch.Tensor:
    """w [K K C, num] in ``layout``'s row order -> torch's conv weight [num, C, K, K] (float64)."""
    w = torch.as_tensor(np.asarray(w, dtype=np.float64))
    num = w.shape[1]
    return from_columns(w, k, k, channel, layout).reshape(num, channel, k, k)


def linear_weight(weight: torch.Tensor) -> np.ndarray:
    """torch's linear weight [outputs, inputs] -> the handouts' w [inputs, outputs]."""
    return weight.detach().to(torch.float64).T.contiguous().numpy().copy()


def bias(b: torch.Tensor, row: bool) -> np.ndarray:
    """torch's bias [num] -> the handouts' b: [1, num] (the port) if ``row``, else [num] (10-601)."""
    values = b.detach().to(torch.float64).numpy().copy()
    return values[None, :] if row else values


def layer_data(x: torch.Tensor, layout: str) -> dict:
    """The handouts' dict of a layer's data for x [N, C, H, W]."""
    n, c, h, w = x.shape
    return {"height": h, "width": w, "channel": c, "batch_size": n, "data": to_columns(x, layout)}

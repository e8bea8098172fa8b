"""The geometry of a sliding-window op (conv2d, max_pool2d), written once for every impl and every check.

A :class:`Window` holds every size the loops need. Output position (m, l) reads, at kernel offset (i, j),

    input row     m*s_h + i*d_h - p_h        0 <= i < K_h
    input column  l*s_w + j*d_w - p_w        0 <= j < K_w

(seed 000 eqs. 1-2 with stride s, padding p and dilation d, 0-based); a position outside [0, H) x [0, W) reads
the padding (zero in a convolution, -inf in max pooling). ``p_h`` and ``p_w`` are the padding before the input;
the output sizes ``h_out`` and ``w_out`` are fields, not derived, because the padding after it may differ:
conv2d's padding='same' pads d*(K - 1) in all, the odd one after, and max_pool2d's ceil_mode lets the last window
run past the end. Either way a kernel only needs p_h, p_w and the output size: a position is in the image or not.

conv2d with ``groups`` = G splits the C_in input and C_out output channels into G groups each: output channel co
(of group co // (C_out/G)) sums over that group's C_in/G input channels only, and the weight is
[C_out, C_in/G, K_h, K_w]. max_pool2d has G = 1 and C_out = C_in.
"""

from __future__ import annotations

from typing import NamedTuple


def conv_output_size(size: int, kernel: int, stride: int, before: int, after: int, dilation: int) -> int:
    """floor((size + before + after - d*(K - 1) - 1) / s) + 1: the windows that fit the padded input."""
    return (size + before + after - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size: conv_output_size, rounded up with ceil_mode, but the last window must
    start inside the input or its left padding (so no window reads only right padding)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """conv2d padding='same': d*(K - 1) in all, so the output has the input's size; half before, the odd
    one after (as PyTorch pads)."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


class Window(NamedTuple):
    """Every size of a sliding-window op (module doc); ``n`` may be 0 for what is the same for every batch."""

    n: int
    c_in: int
    h: int
    w: int
    c_out: int
    k_h: int
    k_w: int
    s_h: int
    s_w: int
    p_h: int
    p_w: int
    d_h: int
    d_w: int
    groups: int
    h_out: int
    w_out: int

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        return self.n, self.c_in, self.h, self.w

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return self.n, self.c_out, self.h_out, self.w_out

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return self.c_out, self.c_in // self.groups, self.k_h, self.k_w

    @property
    def after_h(self) -> int:
        """The padding after the input's rows: p_h, or more where the last window reads further (padding='same'
        with an odd total, ceil_mode)."""
        return max(self.p_h, (self.h_out - 1) * self.s_h + self.d_h * (self.k_h - 1) + 1 - self.h - self.p_h)

    @property
    def after_w(self) -> int:
        return max(self.p_w, (self.w_out - 1) * self.s_w + self.d_w * (self.k_w - 1) + 1 - self.w - self.p_w)

    @property
    def padded_h(self) -> int:
        return self.p_h + self.h + self.after_h

    @property
    def padded_w(self) -> int:
        return self.p_w + self.w + self.after_w

    @property
    def index_map(self) -> tuple[int, int, int, int, int, int, int]:
        """The ints of a convolution's index map, as its loops take them: stride, padding before, dilation, groups."""
        return self.s_h, self.s_w, self.p_h, self.p_w, self.d_h, self.d_w, self.groups

    @property
    def plain(self) -> bool:
        """No dilation and one group: the shape of every model here, and of the fast paths."""
        return self.d_h == self.d_w == self.groups == 1

    @classmethod
    def of(cls, input_shape, c_out, kernel_size, stride, padding, dilation=(1, 1), groups=1,
           output_size=None) -> "Window":
        """The Window of an input [N, C_in, H, W]; padding (p_h, p_w) before and after the input unless
        ``output_size`` (h_out, w_out) says otherwise (see the module doc)."""
        n, c_in, h, w = input_shape
        if output_size is None:
            output_size = tuple(conv_output_size(size, k, s, p, p, d) for size, k, s, p, d in
                                zip((h, w), kernel_size, stride, padding, dilation))
        return cls(n, c_in, h, w, c_out, *kernel_size, *stride, *padding, *dilation, groups, *output_size)

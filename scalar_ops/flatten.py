"""Reshape layer as literal loops (seed 000 eqs. 3-4), 0-based:

    z[n, j] = a[n, ci, m, l],   j = ci*H*W + m*W + l

for a [N, C, H, W] -> z [N, C*H*W]. In general ``flatten(x, start_dim, end_dim)`` merges
dims start_dim..end_dim in the same row-major order; the glue views the input as
[outer, C, H, W, inner] (outer: the dims before start_dim, inner: those after end_dim,
C, H, W: the merged dims, padded with 1s in front or their leading dims merged when
there are not exactly three) and the loops copy each element to its place j.

The loops see the input as [outer, C, H, W*inner] and the output as [outer, C*H*W*inner]:
the dims after end_dim are carried along with l (index q = l*inner + t, their row-major
order), and eq. 4 with W*inner in place of W puts a[n, ci, m, l, t] at z[n, j*inner + t],
its place in the output [outer, C*H*W, inner]. For SimpleConvNet (inner = 1) this is
eq. 4 itself. The innermost loop walks q, along a row of both arrays, and j is marked
``at(j)`` (>= 0 by construction, see ``scalar_ops._numba.at``), so the copy is vectorised
instead of moving one element per inner loop of length 1.
"""

import numpy as np

from scalar_ops._dispatch import registered
from scalar_ops._numba import MOVABLE, as_array, as_tensor, at, jit, prange
from simple_conv_net.functions import Kernels, flatten_op


@jit
def flatten_forward_loops(a, z):
    n_outer, c, h, w = a.shape                                     # w: W*inner (see the module doc)
    for n in prange(n_outer):
        for ci in range(c):
            for m in range(h):
                for l in range(w):
                    j = ci * h * w + m * w + l                     # seed 000 eq. 4
                    z[n, at(j)] = a[n, ci, m, l]                   # seed 000 eq. 3


@jit
def flatten_backward_loops(delta, da):
    n_outer, c, h, w = da.shape
    for n in prange(n_outer):
        for ci in range(c):
            for m in range(h):
                for l in range(w):
                    j = ci * h * w + m * w + l                     # the index map of eq. 4
                    da[n, ci, m, l] = delta[n, at(j)]              # each delta goes back to its element


def _five_dims(shape, start_dim, end_dim):
    """[outer, C, H, W, inner] for ``shape`` with dims start_dim..end_dim merged (see the module doc)."""
    outer = int(np.prod(shape[:start_dim], dtype=np.int64))
    inner = int(np.prod(shape[end_dim + 1:], dtype=np.int64))
    merged = list(shape[start_dim:end_dim + 1]) or [1]               # a 0-D tensor flattens to [1]
    while len(merged) < 3:
        merged.insert(0, 1)
    while len(merged) > 3:
        merged[:2] = [merged[0] * merged[1]]
    return (outer, *merged, inner)


def _flat_shape(shape, start_dim, end_dim):
    merged = int(np.prod(shape[start_dim:end_dim + 1], dtype=np.int64))
    return (*shape[:start_dim], merged, *shape[end_dim + 1:])


def flatten_forward(x, start_dim, end_dim):
    a = as_array("flatten", "input", x, dtypes=MOVABLE)
    z = np.empty(_flat_shape(a.shape, start_dim, end_dim), a.dtype)
    outer, c, h, w, inner = _five_dims(a.shape, start_dim, end_dim)
    flatten_forward_loops(a.reshape(outer, c, h, w * inner), z.reshape(outer, c * h * w * inner))
    return as_tensor(z)


def flatten_backward(grad_z, input_shape):
    """z[n, j] = a[n, ci, m, l] is a copy, dz[n,j]/da[n,ci,m,l] = 1 for the j of eq. 4 and 0
    otherwise, so dL/da[n, ci, m, l] = delta[n, j] with the same j: delta read back in the
    input's shape.
    """
    delta = as_array("flatten", "grad_output", grad_z, dtypes=MOVABLE)
    da = np.empty(tuple(input_shape), delta.dtype)
    start_dim, end_dim = _merged_dims(tuple(input_shape), delta.shape)
    outer, c, h, w, inner = _five_dims(da.shape, start_dim, end_dim)
    flatten_backward_loops(delta.reshape(outer, c * h * w * inner), da.reshape(outer, c, h, w * inner))
    return as_tensor(da)


def _merged_dims(input_shape, output_shape):
    """A (start_dim, end_dim) that flattens input_shape to output_shape (the backward gets only shapes).

    Where size-1 dims make it ambiguous, every candidate moves each element to the same
    place (all are the row-major order of eq. 4), so any one will do.
    """
    if len(input_shape) == 0:
        return 0, 0
    start_dim = 0
    while start_dim < len(output_shape) - 1 and input_shape[start_dim] == output_shape[start_dim]:
        start_dim += 1
    return start_dim, start_dim + len(input_shape) - len(output_shape)


flatten = flatten_op(registered(Kernels(flatten_forward, flatten_backward)))

"""Reshape layer as CUDA kernels, one thread per element (seed 000 eqs. 3-4), 0-based:

    z[n, j] = a[n, ci, m, l],   j = ci*H*W + m*W + l

as ``scalar_ops.flatten`` (which see), on the same [outer, C, H, W, inner] view of the
input (outer: dims before start_dim, inner: dims after end_dim) and the matching
[outer, C*H*W, inner] view of the output, built by the CPU module's shape helpers.
Forward: one thread per output element z[n, j, t] finds its (ci, m, l) by inverting
eq. 4; backward: one thread per input element finds its j by eq. 4.
"""

from numba import cuda

from scalar_ops.cuda import _device


@cuda.jit
def flatten_forward_kernel(a, z):
    n_outer, c, h, w, n_inner = a.shape
    t = cuda.grid(1)
    if t >= n_outer * c * h * w * n_inner:
        return
    k = t % n_inner
    j = t // n_inner % (c * h * w)
    n = t // (n_inner * c * h * w)
    # invert seed 000 eq. 4, j = ci*H*W + m*W + l
    l = j % w
    m = j // w % h
    ci = j // (w * h)
    z[n, j, k] = a[n, ci, m, l, k]                                   # seed 000 eq. 3


@cuda.jit
def flatten_backward_kernel(delta, da):
    n_outer, c, h, w, n_inner = da.shape
    t = cuda.grid(1)
    if t >= n_outer * c * h * w * n_inner:
        return
    k = t % n_inner
    l = t // n_inner % w
    m = t // (n_inner * w) % h
    ci = t // (n_inner * w * h) % c
    n = t // (n_inner * w * h * c)
    j = ci * h * w + m * w + l                                       # the index map of eq. 4
    da[n, ci, m, l, k] = delta[n, j, k]                              # each delta goes back to its element


def _shapes():
    # The CPU module's shape helpers, imported when called: scalar_ops.flatten may import
    # this module while it is itself being imported.
    from scalar_ops.flatten import _five_dims, _flat_shape, _merged_dims

    return _five_dims, _flat_shape, _merged_dims


def flatten_forward(x, start_dim, end_dim):
    five_dims, flat_shape, _ = _shapes()
    a = _device.checked("flatten", "input", x, dtypes=_device.MOVABLE)
    z = _device.empty(flat_shape(tuple(a.shape), start_dim, end_dim), a.dtype, a)
    five = five_dims(tuple(a.shape), start_dim, end_dim)
    _device.launch(flatten_forward_kernel, z.numel(), a.reshape(five),
                   z.reshape(five[0], five[1] * five[2] * five[3], five[4]))
    return z


def flatten_backward(grad_z, input_shape):
    """The delta rule of ``scalar_ops.flatten.flatten_backward``, one thread per input element:
    dL/da[n, ci, m, l] = delta[n, j], j of eq. 4.
    """
    five_dims, _, merged_dims = _shapes()
    delta = _device.checked("flatten", "grad_output", grad_z, dtypes=_device.MOVABLE)
    da = _device.empty(tuple(input_shape), delta.dtype, delta)
    start_dim, end_dim = merged_dims(tuple(input_shape), tuple(delta.shape))
    five = five_dims(tuple(input_shape), start_dim, end_dim)
    _device.launch(flatten_backward_kernel, da.numel(), delta.reshape(five[0], five[1] * five[2] * five[3], five[4]),
                   da.reshape(five))
    return da

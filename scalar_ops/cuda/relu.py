"""ReLU as CUDA kernels, one thread per element of the flat contiguous tensor, as ``scalar_ops.relu``:
z = max(a, 0), written z = 0 if a <= 0 else a (NaN <= 0 is false, so NaN passes through).
"""

from numba import cuda

from scalar_ops.cuda import _device


@cuda.jit
def relu_forward_kernel(a, z):
    k = cuda.grid(1)
    if k >= a.shape[0]:
        return
    z[k] = a.dtype.type(0) if a[k] <= 0 else a[k]               # z = max(a, 0)


@cuda.jit
def relu_backward_kernel(delta, z, da):
    k = cuda.grid(1)
    if k >= z.shape[0]:
        return
    da[k] = delta.dtype.type(0) if z[k] <= 0 else delta[k]      # dz/da = 0 where z <= 0, else 1


def relu_forward(x):
    a = _device.checked("relu", "input", x)
    z = _device.empty(a.shape, a.dtype, a)
    _device.launch(relu_forward_kernel, a.numel(), a.reshape(-1), z.reshape(-1))
    return z


def relu_backward(grad_z, z):
    """The delta rule of ``scalar_ops.relu.relu_backward``, one thread per element:
    dL/da[k] = 0 if z[k] <= 0 else delta[k].
    """
    delta = _device.checked("relu", "grad_output", grad_z)
    out = _device.checked("relu", "output", z)
    da = _device.empty(delta.shape, delta.dtype, delta)
    _device.launch(relu_backward_kernel, da.numel(), delta.reshape(-1), out.reshape(-1), da.reshape(-1))
    return da

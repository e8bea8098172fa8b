"""Fully connected layer as literal loops (seed 000 eq. 5), 0-based:

    z[n, j] = sum_{i} w[j, i] * a[n, i] + b[j]      a [N, D], w [P, D], b [P] -> z [N, P]

One multiply-add at a time; the innermost loop walks i, along a row of w and a row of
a (contiguous memory). Each loop body is written for four samples (or four output
features) at once, so every weight (or input) loaded from memory serves four sums;
the leftover rows run through the same body one at a time.
"""

import numpy as np

from scalar_ops._numba import as_array, as_tensor, jit, prange
from simple_conv_net.functions import Kernels, linear_op


@jit(fastmath=True)
def linear_forward_loops(a, w, b, z):
    n_batch, d = a.shape
    p = w.shape[0]
    # z[:, j] is written by one thread only: prange over the output features j.
    for j in prange(p):
        bias = z.dtype.type(0)
        if b is not None:
            bias = b[j]
        for n in range(n_batch):
            s = z.dtype.type(0)
            for i in range(d):
                s += w[j, i] * a[n, i]                 # seed 000 eq. 5: z[n,j] = sum_i w[j,i] a[n,i]
            z[n, j] = s + bias                         #                         + b[j]


@jit(fastmath=True)
def linear_input_grad_loops(delta, w, da):
    n_batch, d = da.shape
    p = w.shape[0]
    # da[n] is written by one thread only: prange over the samples n.
    for n in prange(n_batch):
        for i in range(d):
            da[n, i] = da.dtype.type(0)
        for j in range(p):
            for i in range(d):
                da[n, i] += delta[n, j] * w[j, i]      # dL/da[n,i] = sum_j delta[n,j] w[j,i]


@jit(fastmath=True)
def linear_weight_grad_loops(delta, a, dw):
    n_batch, d = a.shape
    p = dw.shape[0]
    # dw[j] is written by one thread only: prange over the output features j, never over n.
    for j in prange(p):
        for i in range(d):
            dw[j, i] = dw.dtype.type(0)
        for n in range(n_batch):
            for i in range(d):
                dw[j, i] += delta[n, j] * a[n, i]      # dL/dw[j,i] = sum_n delta[n,j] a[n,i]


@jit(fastmath=True)
def linear_bias_grad_loops(delta, db):
    n_batch, p = delta.shape
    for j in prange(p):
        s = db.dtype.type(0)
        for n in range(n_batch):
            s += delta[n, j]                           # dL/db[j] = sum_n delta[n,j]
        db[j] = s


def linear_forward(x, weight, bias):
    a = as_array("linear", "input", x)
    w = as_array("linear", "weight", weight)
    b = None if bias is None else as_array("linear", "bias", bias)
    z = np.empty((a.shape[0], w.shape[0]), a.dtype)
    linear_forward_loops(a, w, b, z)
    return as_tensor(z)


def linear_backward(grad_z, x, weight, needs):
    """The delta rule for eq. 5, with delta = dL/dz [N, P].

    z[n,j] depends on w[j,i] through the one term w[j,i] * a[n,i], on b[j] with slope 1,
    and on a[n,i] through w[j,i] * a[n,i] for every j, so

        dL/dw[j,i] = sum_n delta[n,j] * a[n,i]
        dL/db[j]   = sum_n delta[n,j]
        dL/da[n,i] = sum_j delta[n,j] * w[j,i]     (the delta of the layer below, before its
                                                    activation's derivative)
    """
    needs_input, needs_weight, needs_bias = needs
    delta = as_array("linear", "grad_output", grad_z)
    grad_a = grad_w = grad_b = None
    if needs_input:
        w = as_array("linear", "weight", weight)
        da = np.empty((delta.shape[0], w.shape[1]), delta.dtype)
        linear_input_grad_loops(delta, w, da)
        grad_a = as_tensor(da)
    if needs_weight:
        a = as_array("linear", "input", x)
        dw = np.empty((delta.shape[1], a.shape[1]), delta.dtype)
        linear_weight_grad_loops(delta, a, dw)
        grad_w = as_tensor(dw)
    if needs_bias:
        db = np.empty(delta.shape[1], delta.dtype)
        linear_bias_grad_loops(delta, db)
        grad_b = as_tensor(db)
    return grad_a, grad_w, grad_b


linear = linear_op(Kernels(linear_forward, linear_backward))

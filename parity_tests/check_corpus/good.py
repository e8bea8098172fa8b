"""A correct student submission of the homework's simple_conv_net_func.py (written for the checker's tests).

Scalar forms loop over output entries (each entry's sum vectorised, so the tests stay quick);
vector forms use im2col and matrix products, as the handout asks.
"""

import torch


def diff_mse(x, y):
    x_np = x.reshape(-1)
    y_np = y.reshape(-1)
    return ((x_np - y_np) ** 2).mean().item()


def conv2d_scalar(x_in, conv_weight, conv_bias, device):
    n_batch, c_in, s_in, _ = x_in.shape
    c_out, _, k, _ = conv_weight.shape
    s_out = s_in - k + 1
    z = torch.zeros(n_batch, c_out, s_out, s_out, device=device)
    for n in range(n_batch):
        for c in range(c_out):
            for m in range(s_out):
                for l in range(s_out):
                    z[n, c, m, l] = (x_in[n, :, m:m + k, l:l + k] * conv_weight[c]).sum() + conv_bias[c]
    return z


def conv_weight2rows(conv_weight):
    return conv_weight.reshape(conv_weight.shape[0], -1)


def im2col(X, kernel_size, device):
    n_batch, c_in, s_in, _ = X.shape
    s_out = s_in - kernel_size + 1
    columns = []
    for m in range(s_out):
        for l in range(s_out):
            columns.append(X[:, :, m:m + kernel_size, l:l + kernel_size].reshape(n_batch, -1))
    return torch.stack(columns, dim=2).to(device)


def conv2d_vector(x_in, conv_weight, conv_bias, device):
    n_batch, _, s_in, _ = x_in.shape
    c_out, _, k, _ = conv_weight.shape
    s_out = s_in - k + 1
    columns = im2col(x_in, k, device)
    z = conv_weight2rows(conv_weight) @ columns + conv_bias.reshape(1, -1, 1)
    return z.reshape(n_batch, c_out, s_out, s_out)


def pool2d_scalar(a, device):
    n_batch, channels, s_in, _ = a.shape
    s_out = s_in // 2
    z = torch.zeros(n_batch, channels, s_out, s_out, device=device)
    for n in range(n_batch):
        for c in range(channels):
            for m in range(s_out):
                for l in range(s_out):
                    z[n, c, m, l] = a[n, c, 2 * m:2 * m + 2, 2 * l:2 * l + 2].max()
    return z


def pool2d_vector(a, device):
    n_batch, channels, s_in, _ = a.shape
    s_out = s_in // 2
    windows = a.reshape(n_batch, channels, s_out, 2, s_out, 2).permute(0, 1, 2, 4, 3, 5)
    return windows.reshape(n_batch, channels, s_out, s_out, 4).max(dim=4).values.to(device)


def relu_scalar(a, device):
    z = torch.zeros_like(a, device=device)
    for n in range(a.shape[0]):
        for j in range(a.shape[1]):
            z[n, j] = a[n, j] if a[n, j] > 0 else 0.0
    return z


def relu_vector(a, device):
    return a.clamp(min=0).to(device)


def reshape_scalar(a, device):
    n_batch, channels, s_in, _ = a.shape
    z = torch.zeros(n_batch, channels * s_in * s_in, device=device)
    for n in range(n_batch):
        for c in range(channels):
            for m in range(s_in):
                z[n, c * s_in * s_in + m * s_in:c * s_in * s_in + (m + 1) * s_in] = a[n, c, m]
    return z


def reshape_vector(a, device):
    return a.reshape(a.shape[0], -1).to(device)


def fc_layer_scalar(a, weight, bias, device):
    n_batch, _ = a.shape
    outputs = weight.shape[0]
    z = torch.zeros(n_batch, outputs, device=device)
    for n in range(n_batch):
        for j in range(outputs):
            z[n, j] = (weight[j] * a[n]).sum() + bias[j]
    return z


def fc_layer_vector(a, weight, bias, device):
    return (a @ weight.t() + bias).to(device)

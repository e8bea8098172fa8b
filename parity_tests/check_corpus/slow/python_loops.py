"""Task 1 as many students write it: each scalar function a Python loop over single tensor entries, one
multiply-add at a time, exactly the handout's equations (1), (2), (5). Correct, and slow: tens of microseconds an
entry, so a conv2d_scalar call at the homework's shapes takes seconds and fc_layer_scalar at 2880->500 most of a
minute, while the checker's small shapes take a fraction of a second."""


def conv2d_scalar(x_in, conv_weight, conv_bias, device):
    n_batch, c_in, s_in, _ = x_in.shape
    c_out, _, k, _ = conv_weight.shape
    s_out = s_in - k + 1
    z = torch.zeros(n_batch, c_out, s_out, s_out, device=device)
    for n in range(n_batch):
        for c in range(c_out):
            for m in range(s_out):
                for l in range(s_out):
                    total = conv_bias[c]
                    for ci in range(c_in):
                        for i in range(k):
                            for j in range(k):
                                total = total + x_in[n, ci, m + i, l + j] * conv_weight[c, ci, i, j]
                    z[n, c, m, l] = total
    return z


def pool2d_scalar(a, device):
    n_batch, channels, s_in, _ = a.shape
    s_out = s_in // 2
    z = torch.zeros(n_batch, channels, s_out, s_out, device=device)
    for n in range(n_batch):
        for c in range(channels):
            for m in range(s_out):
                for l in range(s_out):
                    best = a[n, c, 2 * m, 2 * l]
                    for i in range(2):
                        for j in range(2):
                            if a[n, c, 2 * m + i, 2 * l + j] > best:
                                best = a[n, c, 2 * m + i, 2 * l + j]
                    z[n, c, m, l] = best
    return z


def relu_scalar(a, device):
    z = torch.zeros_like(a, device=device)
    for n in range(a.shape[0]):
        for j in range(a.shape[1]):
            z[n, j] = a[n, j] if a[n, j] > 0 else 0.0
    return z


def fc_layer_scalar(a, weight, bias, device):
    n_batch, inputs = a.shape
    outputs = weight.shape[0]
    z = torch.zeros(n_batch, outputs, device=device)
    for n in range(n_batch):
        for j in range(outputs):
            total = bias[j]
            for i in range(inputs):
                total = total + weight[j, i] * a[n, i]
            z[n, j] = total
    return z

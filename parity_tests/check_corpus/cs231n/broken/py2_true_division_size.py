"""max_pool_forward_naive computes its output size with / (Python 2's floor division on ints): under
Python 3 the size is a float and np.zeros raises "'float' object cannot be interpreted as an integer"."""


def max_pool_forward_naive(x, pool_param):
    ph, pw, stride = pool_param["pool_height"], pool_param["pool_width"], pool_param["stride"]
    n_batch, channels, height, width = x.shape
    out_h = 1 + (height - ph) / stride
    out_w = 1 + (width - pw) / stride
    out = np.zeros((n_batch, channels, out_h, out_w))
    for i in range(int(out_h)):
        for j in range(int(out_w)):
            out[:, :, i, j] = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw].max(axis=(2, 3))
    return out, (x, pool_param)

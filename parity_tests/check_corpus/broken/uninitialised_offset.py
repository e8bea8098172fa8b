"""pool2d_vector writes into torch.empty, reads each window one row and one column late (2m+1, 2m+2: the handout's
1-based indices taken for 0-based ones), and so stops its loops one short: the last row and column are never
written (NaN, or whatever the memory held) and the rest is shifted."""


def pool2d_vector(a, device):
    n_batch, channels, s_in, _ = a.shape
    s_out = s_in // 2
    z = torch.empty(n_batch, channels, s_out, s_out, device=device)
    for m in range(s_out - 1):
        for l in range(s_out - 1):
            z[:, :, m, l] = a[:, :, 2 * m + 1:2 * m + 3, 2 * l + 1:2 * l + 3].amax(dim=(2, 3))
    return z

"""pool2d_scalar translates the handout's 1-based 2m-1, 2m into 0-based 2m-1, 2m: one row and column early
(at m = 0 Python's index -1 wraps to the last row)."""


def pool2d_scalar(a, device):
    n_batch, channels, s_in, _ = a.shape
    s_out = s_in // 2
    z = torch.zeros(n_batch, channels, s_out, s_out, device=device)
    for n in range(n_batch):
        for c in range(channels):
            for m in range(s_out):
                for l in range(s_out):
                    rows, cols = (2 * m - 1, 2 * m), (2 * l - 1, 2 * l)
                    z[n, c, m, l] = max(a[n, c, i, j] for i in rows for j in cols)
    return z

"""pool2d_vector takes its windows at stride 1 into the stride-2 output, and pools channel 0 only (its channel loop
was left at range(1)): two bugs at once, neither of which explains the output alone."""


def pool2d_vector(a, device):
    n_batch, channels, s_in, _ = a.shape
    s_out = s_in // 2
    z = torch.zeros(n_batch, channels, s_out, s_out, device=device)
    for c in range(1):
        for m in range(s_out):
            for l in range(s_out):
                z[:, c, m, l] = a[:, c, m:m + 2, l:l + 2].amax(dim=(1, 2))
    return z

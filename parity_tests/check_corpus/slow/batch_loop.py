"""The vector forms as some students write them: right, but one image at a time, in a Python loop over the batch
(conv2d_vector's windows unrolled one by one, as good.py's im2col does, for each image alone). Correct; at batch 64
a call takes a good part of a second and a training step a second or more, tens of times native."""


def conv2d_vector(x_in, conv_weight, conv_bias, device):
    n_batch, _, s_in, _ = x_in.shape
    c_out, _, k, _ = conv_weight.shape
    s_out = s_in - k + 1
    rows = conv_weight2rows(conv_weight)
    images = [rows @ im2col(image[None], k, device)[0] + conv_bias.reshape(-1, 1) for image in x_in]
    return torch.stack(images).reshape(n_batch, c_out, s_out, s_out)


def pool2d_vector(a, device):
    n_batch, channels, s_in, _ = a.shape
    s_out = s_in // 2
    images = []
    for image in a:
        windows = image.reshape(channels, s_out, 2, s_out, 2).permute(0, 1, 3, 2, 4)
        images.append(windows.reshape(channels, s_out, s_out, 4).max(dim=3).values)
    return torch.stack(images).to(device)

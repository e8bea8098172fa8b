"""conv_forward_naive imports scipy.signal, which the checker's environment does not have:
ModuleNotFoundError "No module named 'scipy'"."""


def conv_forward_naive(x, w, b, conv_param):
    from scipy.signal import correlate

    stride, pad = conv_param["stride"], conv_param["pad"]
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out = np.stack([np.stack([correlate(image, kernel, mode="valid")[0] for kernel in w]) for image in x_pad])
    out = out[:, :, ::stride, ::stride] + b[None, :, None, None]
    return out, (x, w, b, conv_param)

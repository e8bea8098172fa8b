"""Why an output is wrong: each likely mistake's prediction, computed from the inputs, the truth and dout, and
compared with what the candidate returned (dw transposed, db not summed, a missing 1/N, the ReLU mask from dout,
the stride ignored, batch norm's mean and variance taken as constants, eps outside the square root...)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..oracle import truth_of
from .compare import EQUAL, close


def _says(text: str, s) -> str:
    return f"{text} (at {s.call.label})"


def hypotheses(function, s, output: str) -> list[str]:
    """The likely mistakes that explain a wrong ``output`` ("out" or an input name whose gradient is wrong): each
    one's prediction computed from the truth and compared with what the candidate returned."""
    truth = truth_of(s.call).exact
    inputs, options = s.call.inputs, s.call.options
    record = s.record
    got = record.get("output") if output == "out" else (record.get("grads") or {}).get(output)
    want = truth.output if output == "out" else truth.grads[output]
    found = []

    def test(prediction, text, against=None):
        """Say ``text`` when the candidate's output (or ``against``, a transform of it) is the prediction."""
        against = got if against is None else against
        try:
            ok = prediction is not None and close(against.to(torch.float64), prediction)
        except (RuntimeError, ValueError, TypeError):
            ok = False
        if ok:
            found.append(_says(text, s))

    n = inputs["x"].shape[0]
    op = function.op
    if output == "out":
        if op in ("cs231n.batchnorm", "cs231n.spatial_batchnorm"):
            _batchnorm_forward_hypotheses(s, test, truth)
        return found
    if op == "cs231n.affine":
        if output == "w":
            test(want, "dw is transposed: shape (M, D), and dw.T is the right gradient", got.T if got.dim() == 2 else None)
            test(truth.grads["x"].reshape(want.shape) if truth.grads["x"].numel() == want.numel() else None,
                 "dx and dw are swapped: the first output is the gradient of w, the second of x")
        if output == "x" and (record.get("grads") or {}).get("x") is not None:
            got_x = record["grads"]["x"]
            if tuple(got_x.shape) == tuple(truth.grads["w"].shape) and close(got_x, truth.grads["w"]):
                found.append(_says("dx and dw are swapped: the first output is the gradient of w, the second of x", s))
        if output == "b" and got.dim() == 2 and got.shape[0] == n:
            test(want, "db is not summed over the batch: shape (N, M), its sum over axis 0 is right", got.sum(0))
    if op == "cs231n.conv":
        pad, stride = options["pad"], options["stride"]
        if output == "b":
            if got.dim() == 3:
                test(want, "db is not summed over the output positions: shape (F, H', W'), its sum over axes 1, 2 is "
                           "right", got.sum((1, 2)))
            if got.dim() == 2:
                test(want, "db is not summed over the batch: shape (N, F), its sum over axis 0 is right", got.sum(0))
            if got.dim() == 4:
                test(want, "db is not summed over the batch and the positions", got.sum((0, 2, 3)))
        if output == "x":
            if got.numel() == 0 and pad == 0:
                found.append(_says("at pad 0 dx is empty (dx_pad[:, :, pad:-pad] with pad = 0 is an empty slice): "
                                   "crop with pad:pad + H", s))
            if got.dim() == 4 and got.shape[2] == want.shape[2] + 2 * pad and pad > 0:
                test(want, "dx still has its padding: shape (N, C, H + 2 pad, W + 2 pad); cropping pad off each side "
                           "gives the right gradient", got[:, :, pad:-pad, pad:-pad])
            if stride > 1:
                test(_stride_ignored(s, want), "dx ignores the stride (each window taken at (i, j), not (i stride, "
                                               "j stride)); right at stride 1, as in the notebook's gradient check")
    if op in ("cs231n.softmax_loss", "cs231n.svm_loss", "cs231n.batchnorm", "cs231n.spatial_batchnorm") \
            and output == "x":
        count = n if op != "cs231n.spatial_batchnorm" else n * inputs["x"][0, 0].numel()
        test(want * count, f"d{output} is missing the 1/N of the average: N times too large")
        test(want / count, f"d{output} has an extra 1/N: N times too small")
        if op in ("cs231n.batchnorm", "cs231n.spatial_batchnorm"):
            _batchnorm_backward_hypotheses(s, test, truth)
    if op in ("cs231n.batchnorm", "cs231n.layernorm", "cs231n.spatial_batchnorm") and output in ("gamma", "beta") \
            and got.dim() == 1 and got.shape[0] == n and inputs["x"].dim() == 2:
        x_hat = _normalised(inputs["x"], s.call.options.get("eps", 1e-5))
        dout = s.call.grad_output
        test((dout * x_hat).sum(1) if output == "gamma" else dout.sum(1),
             "dgamma and dbeta are summed over the features (axis 1, shape (N,)) instead of over the batch (axis 0)")
    if op == "cs231n.relu":
        x, dout = inputs["x"], s.call.grad_output
        test(dout * (dout > 0), "the ReLU mask is taken from dout (dout > 0), not from the input x")
        test(dout * (x < 0), "the ReLU mask has the wrong sign: the gradient passes where x < 0")
    if op == "cs231n.max_pool":
        test(_pool_every_tie(s), "a window's gradient goes to every entry tied for its maximum (PyTorch sends it "
                                 "to one)")
        test(_pool_overwritten(s), "where windows overlap (stride < pool size) a window's gradient overwrites "
                                   "another's instead of adding to it")
    return found


def _normalised(x, eps):
    return (x - x.mean(0)) / torch.sqrt(x.var(0, unbiased=False) + eps)


def _stride_ignored(s, want):
    """dx when every window is taken at (i, j) instead of (i stride, j stride)."""
    w, dout, pad = s.call.inputs["w"], s.call.grad_output, s.call.options["pad"]
    height, width = want.shape[2], want.shape[3]
    full = F.conv_transpose2d(dout, w)          # windows at (i, j): [N, C, H' + HH - 1, W' + WW - 1]
    padded = torch.zeros(want.shape[0], want.shape[1], height + 2 * pad, width + 2 * pad, dtype=torch.float64)
    h, w_ = min(full.shape[2], padded.shape[2]), min(full.shape[3], padded.shape[3])
    padded[:, :, :h, :w_] = full[:, :, :h, :w_]
    return padded[:, :, pad:pad + height, pad:pad + width]


def _windows(s):
    x, options = s.call.inputs["x"], s.call.options
    ph, pw, stride = options["pool_height"], options["pool_width"], options["stride"]
    out_h, out_w = 1 + (x.shape[2] - ph) // stride, 1 + (x.shape[3] - pw) // stride
    for i in range(out_h):
        for j in range(out_w):
            yield i, j, slice(i * stride, i * stride + ph), slice(j * stride, j * stride + pw)


def _pool_every_tie(s):
    x, dout = s.call.inputs["x"], s.call.grad_output
    dx = torch.zeros_like(x)
    for i, j, rows, cols in _windows(s):
        window = x[:, :, rows, cols]
        top = window.amax((2, 3), keepdim=True)
        dx[:, :, rows, cols] += (window == top) * dout[:, :, i, j][:, :, None, None]
    return dx


def _pool_overwritten(s):
    x, dout = s.call.inputs["x"], s.call.grad_output
    dx = torch.zeros_like(x)
    n, c = x.shape[:2]
    for i, j, rows, cols in _windows(s):
        window = x[:, :, rows, cols].reshape(n, c, -1)
        index = window.argmax(2)
        width = cols.stop - cols.start
        for a in range(n):
            for b in range(c):
                u, v = divmod(int(index[a, b]), width)
                dx[a, b, rows.start + u, cols.start + v] = dout[a, b, i, j]
    return dx


def _bn_axes(s):
    return (0, 2, 3) if s.call.op == "cs231n.spatial_batchnorm" else (0,)


def _bn_shape(s):
    return (1, -1, 1, 1) if s.call.op == "cs231n.spatial_batchnorm" else (1, -1)


EPS_OUTSIDE = "eps added outside the square root (sqrt(var) + eps, not sqrt(var + eps)): the difference is about eps / std"


def eps_outside(s, near: list) -> bool:
    """Whether every output within 1e-5 of native (``near``) is what batch norm with eps outside the square root
    gives: its forward and, for the gradients, either autograd of that forward or the usual backward (derived for
    sqrt(var + eps)) run on a cache whose std is sqrt(var) + eps."""
    got = {"out": s.record.get("output")} | {f"d{k}": v for k, v in (s.record.get("grads") or {}).items()}
    return any(all(name in predicted and close(got.get(name), predicted[name], EQUAL * 1e3) for name, _, _ in near)
               for predicted in (_eps_outside_prediction(s, False), _eps_outside_prediction(s, True)))


def _eps_outside_prediction(s, in_cache: bool) -> dict:
    """out, dx, dgamma, dbeta of batch norm with std = sqrt(var) + eps; ``in_cache``: the gradients of the usual
    backward given that std (std written sqrt(var + c) with c = std^2 - var held constant)."""
    inputs, options = s.call.inputs, s.call.options
    x, gamma, beta = (inputs[k].detach().clone().requires_grad_() for k in ("x", "gamma", "beta"))
    axes, shape = _bn_axes(s), _bn_shape(s)
    if options["mode"] == "train":
        mean, var = x.mean(axes), x.var(axes, unbiased=False)
    else:
        mean, var = inputs["running_mean"], inputs["running_var"]
    std = var.sqrt() + options["eps"]
    if in_cache:
        std = torch.sqrt(var + (std ** 2 - var).detach())
    out = gamma.reshape(shape) * (x - mean.reshape(shape)) / std.reshape(shape) + beta.reshape(shape)
    predicted = {"out": out.detach()}
    if s.call.grad_output is not None and s.call.grad:
        grads = torch.autograd.grad(out, (x, gamma, beta), s.call.grad_output)
        predicted |= {f"d{k}": g for k, g in zip(("x", "gamma", "beta"), grads)}
    return predicted


def _batchnorm_forward_hypotheses(s, test, truth) -> None:
    inputs, options = s.call.inputs, s.call.options
    x, gamma, beta = inputs["x"], inputs["gamma"], inputs["beta"]
    eps = options["eps"]
    shape = _bn_shape(s)
    if options["mode"] == "train":
        axes = _bn_axes(s)
        mean, var = x.mean(axes), x.var(axes, unbiased=False)
        out = gamma.reshape(shape) * (x - mean.reshape(shape)) / (var.reshape(shape).sqrt() + eps) + beta.reshape(shape)
        test(out, "eps added outside the square root (sqrt(var) + eps): a convention within 1e-5 on the notebook's "
                  "data; the difference is about eps / std")
        if s.call.op == "cs231n.spatial_batchnorm":
            for axes_, text in (((2, 3), "normalises each sample's channel over its own positions (axes 2, 3) instead "
                                         "of each channel over the batch and positions (axes 0, 2, 3)"),
                                ((0,), "normalises each position over the batch alone (axis 0) instead of each channel "
                                       "over the batch and positions (axes 0, 2, 3)")):
                m, v = x.mean(axes_, keepdim=True), x.var(axes_, unbiased=False, keepdim=True)
                test(gamma.reshape(shape) * (x - m) / torch.sqrt(v + eps) + beta.reshape(shape), text)


def _batchnorm_backward_hypotheses(s, test, truth) -> None:
    inputs, options = s.call.inputs, s.call.options
    x, gamma, dout = inputs["x"], inputs["gamma"], s.call.grad_output
    axes, shape = _bn_axes(s), _bn_shape(s)
    std = torch.sqrt(x.var(axes, unbiased=False) + options["eps"]).reshape(shape)
    x_hat = (x - x.mean(axes).reshape(shape)) / std
    dx_hat = dout * gamma.reshape(shape)
    test(dx_hat / std, "dx treats the batch mean and variance as constants: dx = gamma dout / std, the terms through "
                       "the mean and the variance missing")
    test((dx_hat - dx_hat.sum(axes, keepdim=True) - x_hat * (dx_hat * x_hat).sum(axes, keepdim=True)) / std,
         "dx: the batch-mean terms are summed, not averaged (a missing 1/N)")


def running_statistics_diagnoses(function, seen_: list) -> list[str]:
    """The running statistics written back with PyTorch's momentum convention, tested on each training call."""
    found = []
    for s in seen_:
        if s.record is None or not s.call.updates:
            continue
        momentum = s.call.options["momentum"]
        axes = _bn_axes(s)
        batch = {"running_mean": s.call.inputs["x"].mean(axes), "running_var": s.call.inputs["x"].var(axes, unbiased=False)}
        for key in s.call.updates:
            got = (s.record.get("updated") or {}).get(key)
            if got is not None and close(got, (1 - momentum) * s.call.inputs[key] + momentum * batch[key], EQUAL) \
                    and not close(got, truth_of(s.call).exact.updated[key], EQUAL):
                found.append(_says("the running statistics use PyTorch's momentum convention, running = (1 - momentum) "
                                   "running + momentum batch; the handout's is momentum running + (1 - momentum) batch",
                                   s))
                return found
    return found


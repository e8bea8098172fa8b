"""The cs231n form: Stanford CS231n assignment 2's ``cs231n/layers.py``, numpy forward/backward pairs with caches.

``affine_forward(x, w, b) -> (out, cache)`` and ``affine_backward(dout, cache) -> (dx, dw, db)``, and
so on for relu, conv (naive), max pooling (naive), batch norm (and ``batchnorm_backward_alt``),
spatial batch norm, layer norm, spatial group norm and dropout; ``softmax_loss(x, y)`` and
``svm_loss(x, y) -> (loss, dx)``. Every array is numpy float64 (labels int64). The target is
``layers.py`` or the folder holding it, imported as the package ``cs231n`` (:func:`locate`), so
``from cs231n.im2col import *`` works as on the student's machine.

Each call's canonical inputs are torch float64 tensors; :func:`run_call` (in the child) gives the
candidate numpy copies and the parameter dicts (conv_param, bn_param...), runs a backward on the
cache *its own forward* returned, and brings back torch tensors: the output, the gradients, the
arguments as the call left them, the running statistics it wrote back, and central finite
differences of the candidate's own forward at a few entries (so "the backward is right for a
wrong forward" and "the backward is wrong" are different findings). Native PyTorch, in float64, is
the oracle (the ops below); batch norm's running statistics follow the handout's momentum
convention, ``running = momentum * running + (1 - momentum) * batch`` with the biased variance,
which is not F.batch_norm's. The judging is :mod:`..pairs`.

Years differ (docs/handouts.md): 2016-17 files have no layer or group norm and read dropout's
p as the drop probability; 2021+ files have no svm_loss; group norm's gamma is (C,) or (1, C, 1, 1).
A function the file does not define is missing, not failing; every gamma shape is tried.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .base import Form, Function
from .ops import Op

# ----------------------------------------------------------------------------- native PyTorch's twins


def _affine(x, w, b):
    """x (N, d_1, ..., d_k) as rows (N, D) @ w (D, M) + b (M,)."""
    return x.reshape(x.shape[0], -1) @ w + b


def _conv(x, w, b, stride, pad):
    return F.conv2d(x, w, b, stride=stride, padding=pad)


def _max_pool(x, pool_height, pool_width, stride):
    return F.max_pool2d(x, (pool_height, pool_width), stride)


def _batchnorm(x, gamma, beta, running_mean, running_var, mode, eps, momentum, spatial=False):
    """Batch norm per feature (over the batch) or per channel (spatial: over the batch and positions), the running
    statistics updated in place with the handout's convention (momentum weighs the old value, biased variance)."""
    axes = (0, 2, 3) if spatial else (0,)
    shape = (1, -1, 1, 1) if spatial else (1, -1)
    if mode == "train":
        mean, var = x.mean(axes), x.var(axes, unbiased=False)
        with torch.no_grad():
            running_mean.mul_(momentum).add_((1 - momentum) * mean)
            running_var.mul_(momentum).add_((1 - momentum) * var)
    else:
        mean, var = running_mean, running_var
    x_hat = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    return gamma.reshape(shape) * x_hat + beta.reshape(shape)


def _spatial_batchnorm(x, gamma, beta, running_mean, running_var, mode, eps, momentum):
    return _batchnorm(x, gamma, beta, running_mean, running_var, mode, eps, momentum, spatial=True)


def _layernorm(x, gamma, beta, eps):
    return F.layer_norm(x, x.shape[1:], gamma, beta, eps)


def _groupnorm(x, gamma, beta, G, eps):
    return F.group_norm(x, G, gamma.reshape(-1), beta.reshape(-1), eps)


def _dropout(x, mode, p):
    """Test mode only (training is random: judged by its statistics, see pairs)."""
    if mode != "test":
        raise NotImplementedError("dropout in training mode has no deterministic oracle")
    return x.clone()


def _softmax_loss(x, y):
    return F.cross_entropy(x, y)


def _svm_loss(x, y):
    """The multiclass hinge loss with margin 1, summed over the classes, averaged over N (PyTorch's divides by C)."""
    return x.shape[1] * F.multi_margin_loss(x, y)


_BN = ("x", "gamma", "beta", "running_mean", "running_var")
OPS = {
    "cs231n.affine": Op(("x", "w", "b"), ("x", "w", "b"), _affine),
    "cs231n.relu": Op(("x",), ("x",), torch.relu),
    "cs231n.conv": Op(("x", "w", "b"), ("x", "w", "b"), _conv),
    "cs231n.max_pool": Op(("x",), ("x",), _max_pool),
    "cs231n.batchnorm": Op(_BN, ("x", "gamma", "beta"), _batchnorm),
    "cs231n.spatial_batchnorm": Op(_BN, ("x", "gamma", "beta"), _spatial_batchnorm),
    "cs231n.layernorm": Op(("x", "gamma", "beta"), ("x", "gamma", "beta"), _layernorm),
    "cs231n.groupnorm": Op(("x", "gamma", "beta"), ("x", "gamma", "beta"), _groupnorm),
    "cs231n.dropout": Op(("x",), ("x",), _dropout),
    "cs231n.softmax_loss": Op(("x", "y"), ("x",), _softmax_loss),
    "cs231n.svm_loss": Op(("x", "y"), ("x",), _svm_loss),
}

# ----------------------------------------------------------------------------- the names


def _pair(base: str, op: str, parameters: tuple, grads: tuple, forward: str | None = None,
          backward: str | None = None) -> tuple[Function, Function]:
    forward, backward = forward or f"{base}_forward", backward or f"{base}_backward"
    return (Function(forward, op, parameters, kind="forward", pair=backward),
            Function(backward, op, ("dout", "cache"), kind="backward", pair=forward, grads=grads))


_NORM = ("x", "gamma", "beta")
FUNCTIONS = {f.name: f for f in (
    *_pair("affine", "cs231n.affine", ("x", "w", "b"), ("x", "w", "b")),
    *_pair("relu", "cs231n.relu", ("x",), ("x",)),
    Function("softmax_loss", "cs231n.softmax_loss", ("x", "y"), kind="loss", grads=("x",)),
    *_pair("batchnorm", "cs231n.batchnorm", ("x", "gamma", "beta", "bn_param"), _NORM),
    Function("batchnorm_backward_alt", "cs231n.batchnorm", ("dout", "cache"), kind="backward",
             pair="batchnorm_forward", grads=_NORM),
    *_pair("layernorm", "cs231n.layernorm", ("x", "gamma", "beta", "ln_param"), _NORM),
    *_pair("dropout", "cs231n.dropout", ("x", "dropout_param"), ("x",)),
    *_pair("conv", "cs231n.conv", ("x", "w", "b", "conv_param"), ("x", "w", "b"),
           "conv_forward_naive", "conv_backward_naive"),
    *_pair("max_pool", "cs231n.max_pool", ("x", "pool_param"), ("x",),
           "max_pool_forward_naive", "max_pool_backward_naive"),
    *_pair("spatial_batchnorm", "cs231n.spatial_batchnorm", ("x", "gamma", "beta", "bn_param"), _NORM),
    *_pair("spatial_groupnorm", "cs231n.groupnorm", ("x", "gamma", "beta", "G", "gn_param"), _NORM),
    Function("svm_loss", "cs231n.svm_loss", ("x", "y"), kind="loss", grads=("x",)),
)}

# A file that defines one of these is from 2018 or later: dropout's p is the keep probability there.
NEWER = ("layernorm_forward", "spatial_groupnorm_forward")

# ----------------------------------------------------------------------------- the target


def _holds_layers(folder: Path) -> Path | None:
    for candidate in (folder / "layers.py", folder / "cs231n" / "layers.py"):
        if candidate.is_file():
            return candidate
    return None


def locate(path: Path):
    """``layers.py``, or a folder holding it (or holding ``cs231n/layers.py``): the package ``cs231n`` made of
    the folder of layers.py, its functions those of ``cs231n.layers``. None for any other path."""
    from ..targets import Target
    layers = path if path.is_file() and path.name == "layers.py" else _holds_layers(path) if path.is_dir() else None
    if layers is None:
        return None
    layers = layers.resolve()
    return Target(str(path), "package", "cs231n", folder=layers.parent, submodule="layers", form="cs231n")


# ----------------------------------------------------------------------------- in the child: numpy both ways


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy().copy()


def _resolve(value, arrays: dict):
    """A request's argument with {"ref": name} replaced by the named array, inside dicts too (parameter dicts)."""
    if isinstance(value, dict) and "ref" in value:
        return arrays[value["ref"]]
    if isinstance(value, dict):
        return {key: _resolve(item, arrays) for key, item in value.items()}
    return value


def _tensor(value):
    """What the candidate returned, as (a float64 tensor or None, facts about it)."""
    from ..runner import describe
    return describe(value)


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape and \
            bool(np.array_equal(a, b, equal_nan=True))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _changed_keys(before: dict, after: dict, written: tuple) -> list[str]:
    """The keys of a parameter dict whose values a call changed (new keys are allowed: a cache kept there)."""
    return [key for key, value in before.items() if key not in written and not _same(value, after.get(key))]


def _forward(fn, request: dict, arrays: dict):
    """Call a forward on fresh copies: (result, the arguments as given, the arguments as the call left them)."""
    args = [_resolve(arg, arrays) for arg in request["args"]]
    given = copy.deepcopy(args)
    return fn(*args), given, args


def _split(result, count: int) -> tuple[list, str | None]:
    """The first ``count`` items of a tuple or list result (a single array for count 1), or why it has none."""
    if count == 1 and not isinstance(result, (tuple, list)):
        return [result], None
    if not isinstance(result, (tuple, list)):
        from ..runner import type_name
        return [None] * count, f"returns a {type_name(result)}, not a tuple of {count}"
    if len(result) < count:
        return list(result) + [None] * (count - len(result)), f"returns {len(result)} values, not {count}"
    return list(result[:count]), None


def _finite_differences(fn, request: dict, arrays: dict, dout: np.ndarray, names: tuple, count: int,
                        step: float = 1e-6) -> dict:
    """Central differences of sum(out * dout) at ``count`` entries of each named input, ``out`` the first value
    ``fn`` returns (a forward's out, a loss): the gradient the candidate's own forward implies.
    {name: {"index": [flat indices], "numeric": tensor}}."""
    found = {}
    rng = np.random.default_rng(0)
    for name in names:
        base = arrays[name]
        flat = rng.choice(base.size, size=min(count, base.size), replace=False)
        values = []
        for index in flat:
            sides = []
            for sign in (1, -1):
                moved = {k: v.copy() for k, v in arrays.items()}
                h = step * max(1.0, abs(float(base.flat[index])))
                moved[name].flat[index] += sign * h
                out, _, _ = _forward(fn, request, moved)
                out = out[0] if isinstance(out, (tuple, list)) else out
                sides.append(float(np.sum(np.asarray(out, dtype=np.float64) * dout)))
            values.append((sides[0] - sides[1]) / (2 * h))
        found[name] = {"index": torch.as_tensor(flat, dtype=torch.int64),
                       "numeric": torch.as_tensor(values, dtype=torch.float64)}
    return found


FD_SECONDS = 2.0    # at most this long on central differences per call: a slow forward gets fewer entries, or none


def _consistency(record: dict, forward, request: dict, arrays: dict, dout, names: tuple, seconds: float) -> None:
    """record["fd"]: central differences of the candidate's own forward (see _finite_differences) at as many entries
    (up to 6 per input) as FD_SECONDS allows given the forward's time ``seconds``; or why there are none. The
    call's own checks never wait on them: a slow forward is no fault."""
    rounds = 2 * len(names) * max(seconds, 1e-6)
    if rounds > FD_SECONDS:
        record["fd_skipped"] = f"its forward takes {seconds:.2g} s, too long for central differences"
        return
    try:
        record["fd"] = _finite_differences(forward, request, arrays, dout, names, min(6, int(FD_SECONDS / rounds)))
    except BaseException as error:  # noqa: BLE001 - candidate code
        record["fd_skipped"] = f"its forward raises {type(error).__name__} on the moved inputs"


WRITTEN = ("running_mean", "running_var")     # the keys of a parameter dict the API writes back (bn_param's)


def _after(record: dict, given: list, args: list, request: dict) -> None:
    """The arguments as the call left them: arrays changed in place, parameter dicts' changed keys, and the running
    statistics written back."""
    record["args_after"] = {arg["ref"]: torch.as_tensor(np.asarray(value)) for arg, value in zip(request["args"], args)
                            if isinstance(arg, dict) and "ref" in arg and isinstance(value, np.ndarray)}
    changed, updated = [], {}
    for before, after in zip(given, args):
        if isinstance(before, dict) and isinstance(after, dict):
            changed += _changed_keys(before, after, WRITTEN)
            updated |= {key: _tensor(after.get(key))[0] for key in WRITTEN if key in before or key in after}
    record["param_changes"] = changed
    record["updated"] = updated


def run_call(module, name: str, request: dict) -> dict:
    """Run one call of ``name`` (see the module doc): the record, with torch tensors and plain data only."""
    from ..runner import describe_error
    function = FUNCTIONS[name]
    record = {"label": request["label"], "seconds": [], "native_seconds": [], "error": None,
              "newer": any(hasattr(module, n) for n in NEWER)}
    arrays = {key: None if t is None else _numpy(t) for key, t in request["inputs"].items()}
    forward = getattr(module, function.pair if function.kind == "backward" else name)
    start = time.perf_counter()
    try:
        result, given, args = _forward(forward, request, arrays)
    except BaseException as error:  # noqa: BLE001 - candidate code
        record["error"] = describe_error(error, "forward")
        if function.kind == "backward":
            record["blocked"] = f"its forward {function.pair} raises {type(error).__name__}"
        return record
    forward_seconds = time.perf_counter() - start
    record["seconds"].append(forward_seconds)
    _after(record, given, args, request)
    if function.kind == "loss":
        (loss, dx), problem = _split(result, 2)
        record["output"], record["output_info"] = _tensor(loss)
        grad, info = _tensor(dx)
        record["grads"], record["grad_info"], record["shape_problem"] = {"x": grad}, {"x": info}, problem
        if record["output"] is not None and record["output"].numel() == 1:
            _consistency(record, forward, request, arrays, np.float64(1.0), ("x",), forward_seconds)
        return record
    (out, cache), problem = _split(result, 2)
    record["output"], record["output_info"] = _tensor(out)
    record["shape_problem"] = problem
    if function.kind == "forward":
        return record
    if problem:     # no cache (a None out still has one: the starter's forwards return (None, cache))
        record["blocked"] = f"its forward {function.pair} {problem}"
        return record
    dout = _numpy(request["grad_output"])
    dout_given = dout.copy()
    backward = getattr(module, name)
    start = time.perf_counter()
    try:
        grads = backward(dout, cache)
    except BaseException as error:  # noqa: BLE001 - candidate code
        record["error"] = describe_error(error, "backward")
        return record
    record["seconds"][0] += time.perf_counter() - start
    values, problem = _split(grads, len(function.grads))
    record["shape_problem"] = problem
    record["grads"], record["grad_info"] = {}, {}
    for key, value in zip(function.grads, values):
        record["grads"][key], record["grad_info"][key] = _tensor(value)
    record["args_after"]["dout"] = torch.as_tensor(dout)
    record["dout_changed"] = not np.array_equal(dout, dout_given)
    if out is not None and request["options"].get("mode", "train") == "train" and function.op != "cs231n.dropout":
        _consistency(record, forward, request, arrays, dout_given, function.grads, forward_seconds)
    return record


# ----------------------------------------------------------------------------- the plan and the rubric

def _power(x: float) -> str:
    return format(x, ".0e").replace("e-0", "e-")


EQUAL = 1e-9        # float64 loops against native: rounding only
CONVENTION = 1e-5   # within this, a difference is a convention (noted), not an error
RULE = (f"Every function is run on numpy float64 arrays on the notebooks' cases, which decide, and on general cases "
        f"(non-square inputs and kernels, other strides, overlapping pool windows, pad 0 and 2, N = 1), which are "
        f"reported and decide only under --strict. Its results are compared with native PyTorch computed in float64 "
        f"on the same inputs: one passes when its largest error, relative to its largest value, is at most "
        f"{_power(EQUAL)}; within {_power(CONVENTION)} it passes with a note (a convention, such as eps outside the square "
        f"root). A backward runs on the cache its own forward returned, with the same upstream gradient dout as "
        f"native PyTorch's autograd, and is also compared with central differences of its own forward, which tells "
        f"a wrong backward from a right backward of a wrong forward.")


def plan(function: Function, settings, material, found: dict | None, style) -> tuple[list, str | None]:
    from .. import pairs, plans
    return plans.finish(pairs.calls(function, settings)), None


def analyse(function: Function, calls: list, result, settings):
    from .. import pairs
    return pairs.analyse(function, calls, result, settings)


def default_rubric(report: dict):
    """--rubric cs231n without the items whose functions the file does not define at all (what its year lacks:
    layer and group norm before 2018, svm_loss from 2021), scored out of the rest."""
    from dataclasses import replace

    from ..rubric import load
    full = load("cs231n")
    missing = {name for name, entry in report["functions"].items() if entry["status"] == "missing"}
    items = tuple(item for item in full.items if not set(item.functions) <= missing)
    dropped = sum(item.points for item in full.items if item not in items)
    return replace(full, items=items, max_score=full.max_score - dropped)


FORM = Form("cs231n", "CS231n assignment 2's cs231n/layers.py: numpy forward/backward pairs with caches",
            FUNCTIONS, plan, default_rubric, run_call=run_call, analyse=analyse, locate=locate, optional=True,
            ops=OPS, rule=RULE)

"""The homework's task 3: SimpleConvNet trained with the candidate's functions, beside native PyTorch.

Both nets start from the same weights (native SimpleConvNet built with the seed) and take the
same MNIST batches (the first ``steps`` of epoch 0, batch 64, shuffled by the seed), with SGD at
the homework's lr 0.01 and momentum 0.5. The candidate's net runs in a child
(:func:`train_in_child`, with the wall-clock limit); native's runs here, in the checker's own
process. Each reports its loss at every step and its accuracy on the first ``test_samples`` MNIST
test images. The handout form trains with the five vector functions (log_softmax and the loss
are native, as in the homework's training script); the functional form with the module's ops,
native ones where it has none.

The epoch time is estimated from the layers' timings (forward + backward at batch 64, each
against native in the same child, see :mod:`.analysis`): 938 steps of the sum, the rest of a
step (log_softmax, loss, SGD update) left out; for the scalar functions from their forward
pass on one image, times 60000 images.
"""

from __future__ import annotations

import itertools
import math
import statistics
import time

import torch

from .. import data
from ..backends import NATIVE, Ops
from ..model import SimpleConvNet
from .analysis import Check, FunctionResult
from .text import first_line

BATCH_SIZE, LR, MOMENTUM = 64, 0.01, 0.5
TRAIN_IMAGES = 60000
STEPS_PER_EPOCH = math.ceil(TRAIN_IMAGES / BATCH_SIZE)
PROGRESS_EVERY = 25
ACCURACY_SLACK = 2.0     # percentage points the candidate's test accuracy may fall below native's (1000 images: noisy)

# The handout's vector functions SimpleConvNet's layers need, and the functional ops.
HANDOUT_LAYERS = {"conv2d": "conv2d_vector", "max_pool2d": "pool2d_vector", "flatten": "reshape_vector",
                  "linear": "fc_layer_vector", "relu": "relu_vector"}
FUNCTIONAL_LAYERS = {op: op for op in ("conv2d", "max_pool2d", "flatten", "linear", "relu")}
FUNCTIONAL_OPTIONAL = ("log_softmax", "nll_loss")


def needed(form: str) -> dict:
    """op -> the function name training needs in ``form``."""
    return HANDOUT_LAYERS if form == "handout" else FUNCTIONAL_LAYERS


def handout_ops(module, with_device: dict) -> Ops:
    """The handout's functions behind torch.nn.functional's signatures (SimpleConvNet's options only)."""
    def device(name):
        return ("cpu",) if with_device.get(name, True) else ()

    conv, pool, reshape, fc, relu = (getattr(module, HANDOUT_LAYERS[op]) for op in
                                     ("conv2d", "max_pool2d", "flatten", "linear", "relu"))
    return NATIVE._replace(
        conv2d=lambda x, w, b=None, stride=1, padding=0: conv(x, w, b, *device("conv2d_vector")),
        max_pool2d=lambda x, kernel_size, stride=None, padding=0: pool(x, *device("pool2d_vector")),
        flatten=lambda x, start_dim=1, end_dim=-1: reshape(x, *device("reshape_vector")),
        linear=lambda x, w, b=None: fc(x, w, b, *device("fc_layer_vector")),
        relu=lambda x: relu(x, *device("relu_vector")))


def functional_ops(module) -> Ops:
    return Ops(*(getattr(module, name, native) for name, native in zip(Ops._fields, NATIVE)))


def batches(seed: int, steps: int, data_dir):
    """The first ``steps`` batches of epoch 0 of MNIST's training set, shuffled by ``seed``."""
    images, labels = data.load_mnist("train", data_dir)
    return itertools.islice(data.Batches(images, labels, BATCH_SIZE, shuffle=True, seed=seed).epoch(0), steps)


def accuracy(model, test_samples: int, data_dir) -> float:
    images, labels = data.load_mnist("test", data_dir)
    images, labels = images[:test_samples], labels[:test_samples]
    correct = 0
    with torch.no_grad():
        for start in range(0, len(labels), 1000):
            output = model(images[start:start + 1000])
            correct += int((output.argmax(1) == labels[start:start + 1000]).sum())
    return 100.0 * correct / len(labels)


def train(ops: Ops, request: dict, progress=None) -> dict:
    """SGD steps of SimpleConvNet with ``ops`` from the request's state; losses, step seconds, accuracy."""
    model = SimpleConvNet("torch")
    model.load_state_dict(request["state"])
    model.ops = ops
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    losses, seconds = [], []
    for step, (x, target) in enumerate(batches(request["seed"], request["steps"], request["data_dir"])):
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = model.loss(model(x), target)
        loss.backward()
        optimizer.step()
        seconds.append(time.perf_counter() - start)
        losses.append(float(loss.detach()))
        if progress and (step + 1) % PROGRESS_EVERY == 0:
            progress({"losses": list(losses), "seconds": list(seconds)})
    return {"losses": losses, "seconds": seconds, "test_samples": request["test_samples"],
            "accuracy": accuracy(model, request["test_samples"], request["data_dir"]),
            "state": {name: value.detach().clone() for name, value in model.state_dict().items()}}


def train_in_child(module, request: dict, write) -> None:
    """The child's side: train with the candidate's functions, writing progress as it goes."""
    from .runner import describe_error

    ops = handout_ops(module, request["with_device"]) if request["form"] == "handout" else functional_ops(module)
    progress = {"losses": [], "seconds": []}

    def keep(state):
        progress.update(state)
        write("train-progress", state)

    try:
        write("train", train(ops, request, keep))
    except BaseException as error:  # noqa: BLE001 - candidate code
        write("train", dict(progress, error=describe_error(error, f"training step {len(progress['losses']) + 1}")))


_NATIVE_RUNS = {}


def native_run(request: dict) -> dict:
    """Native PyTorch's run for the same request (cached: every submission of a batch shares it)."""
    key = (request["seed"], request["steps"], request["data_dir"], request["test_samples"])
    if key not in _NATIVE_RUNS:
        _NATIVE_RUNS[key] = dict(train(NATIVE, request), initial=request["state"])
    return _NATIVE_RUNS[key]


def request(form: str, state: dict, settings, with_device: dict) -> dict:
    return {"form": form, "state": state, "steps": settings.train_steps, "seed": settings.seed,
            "data_dir": str(data.find_mnist(settings.data_dir)), "test_samples": settings.test_samples,
            "with_device": with_device}


# ----------------------------------------------------------------------------- judging


def _drop(losses: list) -> float:
    """How much the loss fell: the mean of the first tenth minus the mean of the last tenth."""
    tenth = max(1, len(losses) // 10)
    return statistics.fmean(losses[:tenth]) - statistics.fmean(losses[-tenth:])


def separation(native: list, ours: list) -> str:
    """Where the candidate's loss curve leaves native's by compare's rule (float32 against native's curve)."""
    from ..compare import compare

    steps = min(len(native), len(ours))
    if not steps:
        return "no steps to compare"
    result = compare(torch.tensor(native[:steps], dtype=torch.float64), torch.tensor(ours[:steps]),
                     dtype=torch.float32)
    if result.first is None:
        return f"the loss follows native's at every one of {steps} steps (max rel {result.max_rel:.2g})"
    (step,), value, expected = result.first
    return (f"the loss follows native's for {step} step{'s' * (step != 1)}, then leaves it at step {step + 1}: "
            f"{value:.5g} where native has {expected:.5g}")


def epoch_estimates(functions: dict, form: str) -> dict:
    """'vector' / 'scalar' -> seconds per epoch of the layers, native's, and the layers that count, from the
    function results' timings; missing when a layer was not timed."""
    layers = ("conv", "pool", "reshape", "fc1", "relu", "fc2")
    kinds = {"vector": (HANDOUT_LAYERS if form == "handout" else FUNCTIONAL_LAYERS).values()}
    if form == "handout":
        kinds["scalar"] = [name.replace("_vector", "_scalar") for name in HANDOUT_LAYERS.values()]
    found = {}
    for kind, names in kinds.items():
        timed = {t["layer"]: t for name in names if name in functions for t in functions[name].timing.values()}
        if not all(layer in timed for layer in layers):
            continue
        if kind == "vector":
            ours = STEPS_PER_EPOCH * sum(timed[layer]["seconds"] for layer in layers)
            native = STEPS_PER_EPOCH * sum(timed[layer]["native"] for layer in layers)
            basis = (f"{STEPS_PER_EPOCH} steps of the layers' forward + backward at batch {BATCH_SIZE}; "
                     f"log_softmax, loss and SGD update not included")
        else:
            images = {layer: timed[layer]["images"] for layer in layers}
            ours = TRAIN_IMAGES * sum(timed[layer]["seconds"] / images[layer] for layer in layers)
            native = TRAIN_IMAGES * sum(timed[layer]["native"] / images[layer] for layer in layers)
            basis = f"{TRAIN_IMAGES} images through the scalar forward passes, timed on {images['conv']} image(s)"
        found[kind] = {"seconds": ours, "native": native, "basis": basis}
    return found


def _timing_check(kind: str, estimates: dict) -> Check:
    name = f"timing {kind} epoch"
    if kind not in estimates:
        return Check(name, False, f"not estimated: a {kind} layer function was not timed (missing, failing or "
                                  f"too slow)")
    e = estimates[kind]
    return Check(name, True, f"about {e['seconds']:.3g} s per epoch, native {e['native']:.3g} s: "
                             f"{e['seconds'] / e['native']:.3g}x native ({e['basis']})")


def _learned(run: dict, state: dict) -> Check:
    """Every parameter moved from where it started (a layer cut from the graph never does)."""
    final = run.get("state") or {}
    frozen = [name for name, start in state.items() if name in final and torch.equal(final[name], start)]
    if not final:
        return Check("train every layer learns", False, "not measured: training did not finish")
    return Check("train every layer learns", not frozen, f"{', '.join(frozen)} never changed: no gradient reaches "
                 f"{'it' if len(frozen) == 1 else 'them'}" if frozen else "every parameter changed")


def analyse_training(records: dict, native: dict | None, estimates: dict, form: str, outcome: str = "finished",
                     reason: str | None = None, unavailable: str | None = None) -> FunctionResult:
    """The 'training' entry of a report: does it train, as well as native, and how fast (task 3)."""
    timings = [_timing_check(kind, estimates) for kind in (("vector", "scalar") if form == "handout" else ("vector",))]
    run = records.get("train") or records.get("train-progress")
    if "import" in records:
        unavailable = f"importing the module raised {records['import']['error']['type']}"
    if run is None or native is None:
        why = unavailable or reason or "the child wrote no result"
        checks = [Check(name, False, f"not run: {why}") for name in
                  ("train runs", "train loss decreases", "train every layer learns", "train accuracy")]
        status = outcome if outcome != "finished" else ("missing" if unavailable else "error")
        return FunctionResult("training", status, checks + timings, diagnoses=[why])
    losses, steps, error = run["losses"], len(native["losses"]), run.get("error")
    finite = all(math.isfinite(x) for x in losses)
    if error:
        runs = Check("train runs", False, f"{error['phase']} raised {error['type']}: {first_line(error['message'])}")
    elif len(losses) < steps:
        runs = Check("train runs", False, f"stopped after {len(losses)} of {steps} steps: {reason}")
    else:
        runs = Check("train runs", finite, f"{steps} SGD steps" + ("" if finite else ", with non-finite losses"))
    drop = _drop(losses) if losses and finite else float("nan")
    falls = Check("train loss decreases", drop >= 0.5 * _drop(native["losses"]),
                  f"the loss fell by {drop:.3g} (native: {_drop(native['losses']):.3g}); "
                  f"{separation(native['losses'], losses)}")
    if "accuracy" in run:
        accurate = Check("train accuracy", run["accuracy"] >= native["accuracy"] - ACCURACY_SLACK,
                         f"{run['accuracy']:.1f}% on the first {run['test_samples']} test images after {len(losses)} "
                         f"steps; native {native['accuracy']:.1f}% (at most {ACCURACY_SLACK:g} points below passes)")
    else:
        accurate = Check("train accuracy", False, "not measured: training did not finish")
    checks = [runs, falls, _learned(run, native["initial"]), accurate] + timings
    result = FunctionResult("training", outcome if outcome != "finished" else
                            ("pass" if all(c.passed for c in checks) else "fail"), checks,
                            diagnoses=[c.detail for c in checks if not c.passed], seconds=sum(run.get("seconds", [])))
    if run.get("seconds") and native.get("seconds"):
        result.notes.append(f"measured training step: {statistics.median(run['seconds']) * 1e3:.3g} ms (median), "
                            f"native {statistics.median(native['seconds']) * 1e3:.3g} ms in the checker's process")
    return result

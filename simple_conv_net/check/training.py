"""The homework's task 3: SimpleConvNet trained with the candidate's functions, beside native PyTorch.

Both nets start from the same weights (native SimpleConvNet built with the seed) and take the
same MNIST batches (the first ``steps`` of epoch 0, batch 64, shuffled by the seed), with SGD at
the homework's lr 0.01 and momentum 0.5. The candidate's net runs in a child
(:func:`train_in_child`, with the wall-clock limit); native's runs here, in the checker's own
process. Each reports its loss at every step and its accuracy on the first ``test_samples`` MNIST
test images, measured at the training batch size (the last batch padded with copies of an image
whose predictions are not counted), so a net whose functions take only batch 64 is measured too;
one more forward pass at another batch size then shows whether the batch size is hard-coded, a
note of its own. The handout form trains with the five vector functions (log_softmax and the loss
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
from .runner import describe_error
from .text import error_text, where

BATCH_SIZE, LR, MOMENTUM = 64, 0.01, 0.5
TRAIN_IMAGES = 60000
STEPS_PER_EPOCH = math.ceil(TRAIN_IMAGES / BATCH_SIZE)
PROGRESS_EVERY = 25
OTHER_BATCH = 10         # the batch size of one forward pass after training: does the net run at another than 64?
ACCURACY_PHASE = "measuring the accuracy"
ACCURACY_SLACK = 2.0     # percentage points the candidate's test accuracy may fall below native's (1000 images: noisy)

# The handout's vector functions SimpleConvNet's layers need, and the functional ops.
HANDOUT_LAYERS = {"conv2d": "conv2d_vector", "max_pool2d": "pool2d_vector", "flatten": "reshape_vector",
                  "linear": "fc_layer_vector", "relu": "relu_vector"}
FUNCTIONAL_LAYERS = {op: op for op in ("conv2d", "max_pool2d", "flatten", "linear", "relu")}


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


class Stopped(Exception):
    """Native training ended early: the checker is stopping."""


def accuracy(model, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Percent of ``labels`` the model predicts, in batches of BATCH_SIZE; the last is padded with copies of its
    first image, whose predictions are not counted (SimpleConvNet treats each sample on its own)."""
    correct = 0
    with torch.no_grad():
        for start in range(0, len(labels), BATCH_SIZE):
            batch = images[start:start + BATCH_SIZE]
            real = len(batch)
            padded = torch.cat([batch, batch[:1].expand(BATCH_SIZE - real, *batch.shape[1:])])
            correct += int((model(padded)[:real].argmax(1) == labels[start:start + real]).sum())
    return 100.0 * correct / len(labels)


def train(ops: Ops, request: dict, run: dict | None = None, progress=None, stop=None) -> dict:
    """SGD steps of SimpleConvNet with ``ops`` from the request's state, its accuracy, then one forward pass at
    OTHER_BATCH. ``run`` is filled as it goes: "losses" and "seconds" at every step, then "accuracy",
    "test_samples" and "state", and "other_batch" (the error there, if any); while it runs, "phase" says what it
    is doing, so an error is reported where it happened. ``progress()`` is called every PROGRESS_EVERY steps;
    ``stop()``, if given, before every step (True: Stopped)."""
    run = {"losses": [], "seconds": []} if run is None else run
    run["phase"] = "building the net"
    model = SimpleConvNet("torch")
    model.load_state_dict(request["state"])
    model.ops = ops
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    for step, (x, target) in enumerate(batches(request["seed"], request["steps"], request["data_dir"])):
        if stop is not None and stop():
            raise Stopped("native training stopped: the checker is stopping")
        run["phase"] = f"training step {step + 1}"
        start = time.perf_counter()
        optimizer.zero_grad()
        loss = model.loss(model(x), target)
        loss.backward()
        optimizer.step()
        run["seconds"].append(time.perf_counter() - start)
        run["losses"].append(float(loss.detach()))
        if progress and (step + 1) % PROGRESS_EVERY == 0:
            progress()
    run["phase"] = ACCURACY_PHASE
    images, labels = data.load_mnist("test", request["data_dir"])
    images, labels = images[:request["test_samples"]], labels[:request["test_samples"]]
    run["accuracy"], run["test_samples"] = accuracy(model, images, labels), len(labels)
    run["state"] = {name: value.detach().clone() for name, value in model.state_dict().items()}
    run["phase"] = f"a forward pass at batch {OTHER_BATCH}"
    try:
        with torch.no_grad():
            model(images[:OTHER_BATCH])
    except BaseException as error:  # noqa: BLE001 - candidate code
        run["other_batch"] = describe_error(error, run["phase"])
    del run["phase"]
    return run


def train_in_child(module, request: dict, write) -> None:
    """The child's side: train with the candidate's functions, writing progress as it goes."""
    ops = handout_ops(module, request["with_device"]) if request["form"] == "handout" else functional_ops(module)
    run = {"losses": [], "seconds": []}

    def progress():
        write("train-progress", {"losses": list(run["losses"]), "seconds": list(run["seconds"])})

    try:
        train(ops, request, run, progress)
    except BaseException as error:  # noqa: BLE001 - candidate code
        run["error"] = describe_error(error, run.pop("phase"))
    write("train", run)


_NATIVE_RUNS = {}


def native_run(request: dict, stop=None) -> dict:
    """Native PyTorch's run for the same request (cached: every submission of a batch shares it); ``stop`` as
    for :func:`train`."""
    key = (request["seed"], request["steps"], request["data_dir"], request["test_samples"])
    if key not in _NATIVE_RUNS:
        _NATIVE_RUNS[key] = dict(train(NATIVE, request, stop=stop), initial=request["state"])
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
    kinds = {"vector": needed(form).values()}
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
    raised = error and f"{error['phase']} raised {error_text(error)}{where(error['traceback'])}"
    if error and error["phase"] != ACCURACY_PHASE:
        runs = Check("train runs", False, raised)
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
                         f"steps (batch {BATCH_SIZE}); native {native['accuracy']:.1f}% (at most {ACCURACY_SLACK:g} "
                         f"points below passes)")
    else:
        accurate = Check("train accuracy", False, raised if error and error["phase"] == ACCURACY_PHASE
                         else "not measured: training did not finish")
    checks = [runs, falls, _learned(run, native["initial"]), accurate] + timings
    result = FunctionResult("training", outcome if outcome != "finished" else
                            ("pass" if all(c.passed for c in checks) else "fail"), checks,
                            diagnoses=[c.detail for c in checks if not c.passed], seconds=sum(run.get("seconds", [])))
    if run.get("other_batch"):
        error = run["other_batch"]
        result.notes.append(f"the net runs at batch {BATCH_SIZE} but not at {OTHER_BATCH}: {error['phase']} raises "
                            f"{error_text(error)}{where(error['traceback'])}: the batch size hard-coded in a layer "
                            f"function? (its accuracy was measured at batch {BATCH_SIZE})")
    if run.get("seconds") and native.get("seconds"):
        result.notes.append(f"measured training step: {statistics.median(run['seconds']) * 1e3:.3g} ms (median), "
                            f"native {statistics.median(native['seconds']) * 1e3:.3g} ms in the checker's process")
    return result

"""The homework's task 3: SimpleConvNet trained with the candidate's functions, beside native PyTorch.

Both nets start from the same weights (native SimpleConvNet built with the seed) and take the
same MNIST batches (the first ``steps`` of epoch 0, batch 64, shuffled by the seed), with SGD at
the homework's lr 0.01 and momentum 0.5. The candidate's net runs in a child
(:func:`train_in_child`); native's runs here, in the checker's own process, for as many steps as
the candidate's took. Slow functions are no fault: the child trains the steps that fit its budget
(``budget`` seconds, but at least MIN_STEPS), then measures its accuracy on as many of the first
``test_samples`` MNIST test images as the budget leaves room for (at least MIN_TEST_SAMPLES), and
native is compared over the same steps and the same images. The accuracy is measured at the
training batch size (the last batch padded with copies of an image whose predictions are not
counted), so a net whose functions take only batch 64 is measured too; one more forward pass at
another batch size then shows whether the batch size is hard-coded, a note of its own. A child
stopped at its hard limit (a step that hangs) leaves its progress, written as it goes: the steps
it finished are judged, what it did not reach is not checked. The handout form trains with the
five vector functions (log_softmax and the loss are native, as in the homework's training
script); the functional form with the module's ops, native ones where it has none.

The vector epoch time is measured where the net trained: the median step times the 938 steps of
an epoch (:func:`measured_epochs`). Without training it is estimated from the layers' timings
(forward + backward at batch 64, each against native in the same child, see :mod:`.analysis`;
where a slow function's timed call did not run, from its largest call that did, forward only
times GRAD_FACTOR): 938 steps of the sum, the rest of a step (log_softmax, loss, SGD update) left
out. The scalar epoch: the scalar forward passes per image times 60000 images (a layer none of
whose calls ran within the budget extrapolated from those that did).
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
from .runner import describe_error, unwritten_as_nan
from .schedule import GRAD_FACTOR, seconds_text
from .text import error_text, where

BATCH_SIZE, LR, MOMENTUM = 64, 0.01, 0.5
TRAIN_IMAGES = 60000
STEPS_PER_EPOCH = math.ceil(TRAIN_IMAGES / BATCH_SIZE)
PROGRESS_EVERY = 25      # steps between progress records (or PROGRESS_SECONDS, whichever comes first)
PROGRESS_SECONDS = 5.0
MIN_STEPS = 30           # steps trained however slow (a loss curve of a few dozen steps says something)
MIN_TEST_SAMPLES = 256   # test images the accuracy is measured on however slow
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


class SGD:
    """torch.optim.SGD's update as the homework's training uses it (momentum, no dampening, no Nesterov, no weight
    decay), written out: v = momentum * v + g (v = g at the first step), p = p - lr * v. torch.optim's Optimizer
    imports torch._dynamo the first time one is made, seconds in the checker and again in every training child;
    the test suite holds this equal to torch.optim.SGD, bit for bit."""

    def __init__(self, parameters, lr: float, momentum: float) -> None:
        self.parameters, self.lr, self.momentum = list(parameters), lr, momentum
        self.velocity = [None] * len(self.parameters)

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for index, parameter in enumerate(self.parameters):
            if parameter.grad is None:
                continue
            if self.velocity[index] is None:
                self.velocity[index] = parameter.grad.detach().clone()
            else:
                self.velocity[index].mul_(self.momentum).add_(parameter.grad)
            parameter.add_(self.velocity[index], alpha=-self.lr)


def _state(model) -> dict:
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def train(ops: Ops, request: dict, run: dict | None = None, progress=None, stop=None) -> dict:
    """SGD steps of SimpleConvNet with ``ops`` from the request's state, its accuracy, then one forward pass at
    OTHER_BATCH. With a "budget" (seconds) in the request, the steps stop once the next one would not fit (but not
    before MIN_STEPS) and the accuracy is measured on the test images that fit (but at least MIN_TEST_SAMPLES).
    ``run`` is filled as it goes: "losses" and "seconds" at every step, then "accuracy", "test_samples" and
    "state", and "other_batch" (the error there, if any); while it runs, "phase" says what it is doing, so an
    error is reported where it happened. ``progress(model)`` is called every PROGRESS_EVERY steps or
    PROGRESS_SECONDS; ``stop()``, if given, before every step (True: Stopped)."""
    run = {"losses": [], "seconds": []} if run is None else run
    run["phase"] = "building the net"
    model = SimpleConvNet("torch")
    model.load_state_dict(request["state"])
    model.ops = ops
    optimizer = SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    budget, start, reported = request.get("budget"), time.perf_counter(), time.perf_counter()
    for step, (x, target) in enumerate(batches(request["seed"], request["steps"], request["data_dir"])):
        if stop is not None and stop():
            raise Stopped("native training stopped: the checker is stopping")
        if budget and step >= MIN_STEPS and time.perf_counter() - start + statistics.median(run["seconds"]) > budget:
            break
        run["phase"] = f"training step {step + 1}"
        begun = time.perf_counter()
        optimizer.zero_grad()
        loss = model.loss(model(x), target)
        loss.backward()
        optimizer.step()
        run["seconds"].append(time.perf_counter() - begun)
        run["losses"].append(float(loss.detach()))
        if progress and ((step + 1) % PROGRESS_EVERY == 0 or time.perf_counter() - reported > PROGRESS_SECONDS):
            progress(model)
            reported = time.perf_counter()
    run["phase"] = ACCURACY_PHASE
    images, labels = data.load_mnist("test", request["data_dir"])
    count = request["test_samples"]
    if budget and run["seconds"]:       # a forward pass is about a third of a step
        batches_left = (budget - (time.perf_counter() - start)) / (statistics.median(run["seconds"]) / 3)
        count = min(count, max(MIN_TEST_SAMPLES, int(batches_left) * BATCH_SIZE))
    images, labels = images[:count], labels[:count]
    run["accuracy"], run["test_samples"] = accuracy(model, images, labels), len(labels)
    run["state"] = _state(model)
    run["phase"] = f"a forward pass at batch {OTHER_BATCH}"
    try:
        with torch.no_grad():
            model(images[:OTHER_BATCH])
    except BaseException as error:  # noqa: BLE001 - candidate code
        run["other_batch"] = describe_error(error, run["phase"])
    del run["phase"]
    return run


def train_in_child(module, request: dict, write) -> None:
    """The child's side: train with the candidate's functions, writing progress as it goes; memory the functions
    never write is NaN, as in every checked call (runner.unwritten_as_nan), so such a net fails alike every time
    instead of training on whatever the memory held."""
    ops = handout_ops(module, request["with_device"]) if request["form"] == "handout" else functional_ops(module)
    run = {"losses": [], "seconds": []}

    def progress(model):
        write("train-progress", {"losses": list(run["losses"]), "seconds": list(run["seconds"]), "state": _state(model)})

    try:
        with unwritten_as_nan():
            train(ops, request, run, progress)
    except BaseException as error:  # noqa: BLE001 - candidate code
        run["error"] = describe_error(error, run.pop("phase"))
    write("train", run)


_NATIVE_RUNS = {}


def native_run(request: dict, stop=None, steps: int | None = None, test_samples: int | None = None) -> dict:
    """Native PyTorch's run for the same request, over ``steps`` steps and ``test_samples`` test images if given
    (the candidate's: what it did within its budget), cached (every submission of a batch shares it); ``stop``
    as for :func:`train`."""
    request = dict(request, budget=None, steps=request["steps"] if steps is None else steps,
                   test_samples=request["test_samples"] if test_samples is None else test_samples)
    key = (request["seed"], request["steps"], request["data_dir"], request["test_samples"])
    if key not in _NATIVE_RUNS:
        _NATIVE_RUNS[key] = dict(train(NATIVE, request, stop=stop), initial=request["state"])
    return _NATIVE_RUNS[key]


def request(form: str, state: dict, settings, with_device: dict, budget: float | None = None) -> dict:
    """What the training child gets; ``budget``: the seconds its steps and accuracy may take (see train)."""
    return {"form": form, "state": state, "steps": settings.train_steps, "seed": settings.seed,
            "data_dir": str(data.find_mnist(settings.data_dir)), "test_samples": settings.test_samples,
            "with_device": with_device, "budget": budget}


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


EPOCH_LAYERS = ("conv", "pool", "reshape", "fc1", "relu", "fc2")


def epoch_estimates(functions: dict, form: str) -> dict:
    """'vector' / 'scalar' -> seconds per epoch of the layers, native's, and the layers that count, from the
    function results' timings; missing when a layer was not timed."""
    layers = EPOCH_LAYERS
    kinds = {"vector": needed(form).values()}
    if form == "handout":
        kinds["scalar"] = [name.replace("_vector", "_scalar") for name in HANDOUT_LAYERS.values()]
    found = {}
    for kind, names in kinds.items():
        timed = {}
        for name in names:      # a layer's timed call first, else its largest call that returned
            for t in sorted(functions[name].timing.values() if name in functions else (),
                            key=lambda t: bool(t.get("estimated"))):
                timed.setdefault(t["layer"], t)
        if not all(layer in timed for layer in layers):
            continue
        guessed = sorted(layer for layer in layers if timed[layer].get("estimated") and not timed[layer].get("extrapolated"))
        extrapolated = sorted(layer for layer in layers if timed[layer].get("extrapolated"))
        if kind == "vector":
            def step(t, key):      # forward + backward of one batch of BATCH_SIZE
                factor = 1.0 if t["backward"] else GRAD_FACTOR
                return t[key] / t["images"] * BATCH_SIZE * factor
            ours = STEPS_PER_EPOCH * sum(step(timed[layer], "seconds") for layer in layers)
            native = STEPS_PER_EPOCH * sum(step(timed[layer], "native") for layer in layers)
            basis = (f"{STEPS_PER_EPOCH} steps of the layers' forward + backward at batch {BATCH_SIZE}; "
                     f"log_softmax, loss and SGD update not included")
        else:
            ours = TRAIN_IMAGES * sum(timed[layer]["seconds"] / timed[layer]["images"] for layer in layers)
            native = TRAIN_IMAGES * sum(timed[layer]["native"] / timed[layer]["images"] for layer in layers)
            basis = (f"{TRAIN_IMAGES} images through the scalar forward passes, timed on "
                     f"{timed['conv']['images']} image(s)")
        if guessed:
            basis += (f"; {', '.join(guessed)} from {'its' if len(guessed) == 1 else 'their'} largest call that ran "
                      f"(the timed one did not, for lack of time), scaled to the batch" +
                      (f", forward only times {GRAD_FACTOR:g} for the backward" if kind == "vector" else "") +
                      ", native timed in the checker's process")
        if extrapolated:
            basis += (f"; {', '.join(extrapolated)} extrapolated from the calls that ran (none at its shapes did, for "
                      f"lack of time)")
        found[kind] = {"seconds": ours, "native": native, "basis": basis}
    return found


def measured_epochs(estimates: dict, records: dict, native: dict | None) -> dict:
    """The estimates with the vector epoch measured where the candidate's net trained: its median step (forward,
    loss, backward, SGD update) times the steps of an epoch, beside native's."""
    run = records.get("train") or records.get("train-progress") or {}
    if not run.get("seconds") or not (native or {}).get("seconds") or run.get("error"):
        return estimates
    ours, theirs = statistics.median(run["seconds"]), statistics.median(native["seconds"])
    return dict(estimates, vector={
        "seconds": ours * STEPS_PER_EPOCH, "native": theirs * STEPS_PER_EPOCH,
        "basis": f"measured: the median of its {len(run['seconds'])} training steps (forward, loss, backward, SGD "
                 f"update at batch {BATCH_SIZE}), {ours * 1e3:.3g} ms, times the {STEPS_PER_EPOCH} steps of an epoch; "
                 f"native's in the checker's process"})


UNTIMED = ("error", "missing")   # layer functions whose missing timing counts against task 3's timing check


def _timing_check(kind: str, estimates: dict, functions: dict, form: str) -> Check | dict:
    """The epoch time of one kind of function: a check, or (when a layer function was not checked, or too slow to
    time) a not-checked entry."""
    name = f"timing {kind} epoch"
    if kind in estimates:
        e = estimates[kind]
        return Check(name, True, f"about {e['seconds']:.3g} s per epoch, native {e['native']:.3g} s: "
                                 f"{e['seconds'] / e['native']:.3g}x native ({e['basis']})")
    names = list(needed(form).values())
    names = names if kind == "vector" else [n.replace("_vector", "_scalar") for n in names]
    failing = [f"{n} is {functions[n].status}" for n in names if n in functions and functions[n].status in UNTIMED]
    if failing:
        return Check(name, False, f"not estimated: {', '.join(failing)}")
    unchecked = [n for n in names if n not in functions]
    timed = {t["layer"] for n in names if n in functions for t in functions[n].timing.values()}
    untimed = [layer for layer in EPOCH_LAYERS if layer not in timed]
    why = (f"{', '.join(unchecked)} {'was' if len(unchecked) == 1 else 'were'} not checked" if unchecked else
           f"no call of the {', '.join(untimed)} layer{'s' * (len(untimed) > 1)} returned")
    return {"name": name, "detail": f"not checked: {why}"}


def _learned(run: dict, state: dict) -> Check | None:
    """Every parameter moved from where it started (a layer cut from the graph never does); None: no state."""
    final = run.get("state") or {}
    if not final:
        return None
    frozen = [name for name, start in state.items() if name in final and torch.equal(final[name], start)]
    return Check("train every layer learns", not frozen, f"{', '.join(frozen)} never changed: no gradient reaches "
                 f"{'it' if len(frozen) == 1 else 'them'}" if frozen else "every parameter changed")


def _fell(losses: list, native: list) -> Check:
    """The loss falls as native's does over the same steps: by half as much at least, or along native's curve."""
    drop = _drop(losses) if losses and all(math.isfinite(x) for x in losses) else float("nan")
    along = separation(native, losses)
    return Check("train loss decreases", drop >= 0.5 * _drop(native) or along.startswith("the loss follows native's"),
                 f"the loss fell by {drop:.3g} over {len(losses)} steps (native over the same: {_drop(native):.3g}); "
                 f"{along}")


def analyse_training(records: dict, native: dict | None, estimates: dict, form: str, outcome: str = "finished",
                     reason: str | None = None, unavailable: str | None = None, functions: dict | None = None,
                     requested: int | None = None) -> FunctionResult:
    """The 'training' entry of a report: does it train, as well as native over the same steps, and how fast
    (task 3). Only what ran is judged: the steps the candidate's net took (``requested``: the steps asked for),
    its accuracy if it got that far."""
    timings = [_timing_check(kind, estimates, functions or {}, form)
               for kind in (("vector", "scalar") if form == "handout" else ("vector",))]
    checks, not_checked = [t for t in timings if isinstance(t, Check)], [t for t in timings if isinstance(t, dict)]
    run = records.get("train") or records.get("train-progress")
    if "import" in records:
        unavailable = f"importing the module raised {records['import']['error']['type']}"
    if run is None or native is None or not run["losses"] and not run.get("error"):
        why = unavailable or reason or "the child wrote no result"
        status = outcome if outcome != "finished" else ("missing" if unavailable else "error")
        return FunctionResult("training", status, checks, diagnoses=[why], not_checked=not_checked)
    losses, error = run["losses"], run.get("error")
    steps, asked = len(losses), requested or len(losses)
    finite = all(math.isfinite(x) for x in losses)
    raised = error and f"{error['phase']} raised {error_text(error)}{where(error['traceback'])}"
    if error and error["phase"] != ACCURACY_PHASE:
        runs = Check("train runs", False, raised)
    else:
        took = f" (those that fit its time budget; a step took {seconds_text(statistics.median(run['seconds']))})" \
            if steps < asked else ""
        runs = Check("train runs", finite, f"{steps} of {asked} SGD steps{took}" +
                     ("" if finite else ", with non-finite losses"))
    found = [runs, _fell(losses, native["losses"][:steps]) if steps else None, _learned(run, native["initial"])]
    if not steps:
        not_checked.append({"name": "train loss decreases", "detail": "not checked: no step finished"})
    if "accuracy" in run:
        found.append(Check("train accuracy", run["accuracy"] >= native["accuracy"] - ACCURACY_SLACK,
                           f"{run['accuracy']:.1f}% on the first {run['test_samples']} test images after {steps} steps "
                           f"(batch {BATCH_SIZE}); native {native['accuracy']:.1f}% on them after the same steps (at "
                           f"most {ACCURACY_SLACK:g} points below passes)"))
    elif error and error["phase"] == ACCURACY_PHASE:
        found.append(Check("train accuracy", False, raised))
    else:
        not_checked.append({"name": "train accuracy", "detail": f"not checked: training was stopped after {steps} "
                                                                f"steps ({reason}), before the accuracy"})
    if found[2] is None and steps:
        not_checked.append({"name": "train every layer learns", "detail": "not checked: no weights were recorded"})
    checks = [c for c in found if c is not None] + checks
    result = FunctionResult("training", "pass" if all(c.passed for c in checks) else "fail", checks,
                            diagnoses=[c.detail for c in checks if not c.passed], seconds=sum(run.get("seconds", [])),
                            not_checked=not_checked)
    if outcome == "timeout" and not error:
        result.notes.append(f"stopped at its time limit after {steps} steps ({reason}): the steps it took are judged")
    elif steps < asked and not error:
        result.notes.append(f"slow, which is no fault: it trained {steps} of the {asked} steps asked, those that fit its "
                            f"time budget (--timeout), and is judged beside native over the same {steps} steps")
    if run.get("other_batch"):
        error = run["other_batch"]
        result.notes.append(f"the net runs at batch {BATCH_SIZE} but not at {OTHER_BATCH}: {error['phase']} raises "
                            f"{error_text(error)}{where(error['traceback'])}: the batch size hard-coded in a layer "
                            f"function? (its accuracy was measured at batch {BATCH_SIZE})")
    return result

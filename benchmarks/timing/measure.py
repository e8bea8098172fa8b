"""One point of the matrix: one model at one batch size, every impl from the same weights.

For each impl a model is built from the same initial weights and trained with the homework's
optimizer (SGD, lr 0.01, momentum 0.5) on the same real MNIST batches (shuffled as train.py
shuffles them), so every impl does the same work on the same data. LeNet-5 is timed at its
CIFAR-10 shape, 3x32x32: the MNIST digits padded to 32x32 and repeated over three channels
(CIFAR-10 itself is not needed; an op's time does not depend on what the picture shows).

* compiled impls (``--compile``): ``<impl>+c`` is the same model under torch.compile, built as
  train.py --compile builds it (:class:`simple_conv_net.compiled.Compiled`: fullgraph, inductor,
  the batch dimension dynamic); the loss and the SGD step stay eager, as in train.py. It is timed
  in the same rounds as the eager impls.
* warm-up: the first training step of each impl, timed on its own (for scalar, at the first
  point of a run, where numba compiles its kernels or loads them from its cache; for a compiled
  impl, where torch.compile compiles the forward and backward graphs: that time is also read from
  dynamo's own accounting, ``compile_s``), then three more steps, whose median sets the length of
  a round.
* training: ``repeats`` interleaved rounds (:mod:`.core`); in each round every impl runs the
  same block of steps (zero_grad, forward, nll loss, backward, SGD step), timed as one block.
  A block is ``steps`` long if given, else as many steps as fit in ``budget`` seconds of the
  slowest impl's warm-up step (at least one, at most ``MAX_STEPS``), so a batch-512 point
  costs about as much as a batch-1 point. The batches are cut before the block, so batch
  assembly is not timed. With ``full_epoch`` a block is one whole epoch.
* the GEMM rate of the bound (:mod:`.flops`) is measured at the start of every round.
* inference (:func:`inference`): the test set at batch 1000 under torch.no_grad(), interleaved,
  after one untimed pass (where a compiled impl compiles its evaluation graph, ``compile_s``).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

import torch

from simple_conv_net import data
from simple_conv_net.compiled import Compiled, compile_cost
from simple_conv_net.model import build_model

from .core import clock, interleaved, stats
from .flops import gemm_rate

EPOCH_IMAGES = 60_000
LR, MOMENTUM = 0.01, 0.5
WARMUP_STEPS = 4
MAX_STEPS = 500
INFERENCE_BATCH = 1000
COMPILED = "+c"          # the name of an impl under torch.compile: "vector+c"


def compiled(impl: str) -> str:
    return impl + COMPILED


def eager_impl(name: str) -> str:
    """The impl a name times, compiled or not: 'vector+c' -> 'vector'."""
    return name.removesuffix(COMPILED)


def is_compiled(name: str) -> bool:
    return name.endswith(COMPILED)


@dataclass(frozen=True)
class ModelSpec:
    """A model of the matrix: the name of build_model, its input shape, and batch norm on or off."""

    key: str
    name: str
    input_shape: tuple[int, int, int]
    batch_norm: bool = False
    label: str = ""

    def build(self, impl: str):
        return build_model(self.name, impl, self.input_shape, batch_norm=self.batch_norm)


MODELS = {
    "simple": ModelSpec("simple", "simple", (1, 28, 28), label="SimpleConvNet, MNIST 1x28x28"),
    "lenet": ModelSpec("lenet", "lenet", (1, 28, 28), label="LeNet, MNIST 1x28x28"),
    "lenet5": ModelSpec("lenet5", "lenet5", (3, 32, 32), label="LeNet-5, 3x32x32"),
    "lenet5-bn": ModelSpec("lenet5-bn", "lenet5", (3, 32, 32), batch_norm=True,
                           label="LeNet-5 with batch norm, 3x32x32"),
}


def shaped(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """MNIST images [N, 1, 28, 28] as [N, *shape]: zero-padded around to the size, the channel repeated."""
    channels, height, width = shape
    top, left = (height - images.shape[2]) // 2, (width - images.shape[3]) // 2
    if (top, left) != (0, 0):
        padded = images.new_zeros((images.shape[0], 1, height, width))
        padded[:, :, top:top + images.shape[2], left:left + images.shape[3]] = images
        images = padded
    return images.expand(-1, channels, -1, -1).contiguous()


def initial_state(spec: ModelSpec, seed: int) -> dict:
    """The initial weights every impl of a point starts from (PyTorch's initialisation, seeded)."""
    torch.manual_seed(seed)
    return {k: v.clone() for k, v in spec.build("torch").state_dict().items()}


def make_model(spec: ModelSpec, impl: str, state: dict, device: torch.device):
    """(model, optimizer) of ``impl`` (a compiled one: 'vector+c') in training mode, from ``state``."""
    model = spec.build(eager_impl(impl)).to(device)
    model.load_state_dict(state)
    model.train()
    return Compiled(model) if is_compiled(impl) else model, torch.optim.SGD(model.parameters(), lr=LR,
                                                                            momentum=MOMENTUM)


def training_step(model, optimizer, images, labels):
    optimizer.zero_grad(set_to_none=True)
    loss = model.loss(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss


def batch_stream(batches: data.Batches, shape):
    """The batches of epoch 0, 1, 2, ... one after the other, without end, their images in ``shape``."""
    epoch = 0
    while True:
        for images, labels in batches.epoch(epoch):
            yield shaped(images, shape), labels
        epoch += 1


@dataclass
class Plan:
    """How long a point's measurement is: fixed steps, a time budget per block, or whole epochs."""

    repeats: int
    steps: int | None = None
    budget_s: float = 0.5
    full_epoch: bool = False

    def steps_for(self, warm_step_s: float, epoch_steps: int) -> int:
        if self.full_epoch:
            return epoch_steps
        if self.steps is not None:
            return self.steps
        return max(1, min(MAX_STEPS, round(self.budget_s / warm_step_s)))


def measure_training(spec: ModelSpec, batch_size: int, impls: list[str], state: dict, train, plan: Plan,
                     device: torch.device, seed: int) -> dict:
    """Warm-up and interleaved training rounds of one (model, batch size) point.

    ``train``: MNIST (images, labels) on ``device``. Returns {"models": {impl: (model, optimizer)},
    "stream", "steps", "warmup", "train_ms", "epoch_s", "gemm_rates"}.
    """
    batches = data.Batches(*train, batch_size, shuffle=True, seed=seed)
    stream = batch_stream(batches, spec.input_shape)
    models = {impl: make_model(spec, impl, state, device) for impl in impls}
    warm = [next(stream) for _ in range(WARMUP_STEPS)]
    warmup, warm_steps = {}, []
    for impl in impls:
        model, optimizer = models[impl]
        before = compile_cost()
        first = clock(lambda: training_step(model, optimizer, *warm[0]), device)
        rest = [clock(lambda b=b: training_step(model, optimizer, *b), device) for b in warm[1:]]
        warmup[impl] = {"first_step_ms": 1e3 * first}
        if is_compiled(impl):
            cost = compile_cost() - before
            warmup[impl].update(compile_s=cost.seconds, graphs=cost.graphs)
        warm_steps.append(statistics.median(rest))
    steps = plan.steps_for(max(warm_steps), len(batches))

    gemm_rates = []

    def block(round_index):
        gemm_rates.append(gemm_rate(device))
        if plan.full_epoch:
            return [(shaped(images, spec.input_shape), labels) for images, labels in batches.epoch(round_index + 1)]
        return [next(stream) for _ in range(steps)]

    def train_block(impl):
        model, optimizer = models[impl]

        def run(steps_of_round):
            return clock(lambda: [training_step(model, optimizer, *b) for b in steps_of_round], device), \
                len(steps_of_round)

        return run

    rounds = interleaved({impl: train_block(impl) for impl in impls}, plan.repeats, prepare=block)
    return {
        "models": models,
        "stream": stream,
        "steps": steps,
        "warmup": warmup,
        "train_ms": {impl: [1e3 * s / n for s, n in rounds[impl]] for impl in impls},
        "epoch_s": {impl: [s for s, _ in rounds[impl]] if plan.full_epoch else [] for impl in impls},
        "gemm_rates": gemm_rates,
    }


def summarise_training(measured: dict, batch_size: int, limit_ms: float) -> dict:
    """{impl: {"warmup", "train"}} from :func:`measure_training`'s samples; ratios to torch where timed,
    and for a compiled impl to compiled torch and to the impl's own eager steps where those were timed."""
    train_ms = measured["train_ms"]
    medians = {impl: statistics.median(samples) for impl, samples in train_ms.items()}
    torch_median = medians.get("torch")
    results = {}
    for impl, samples in train_ms.items():
        step = stats(samples)
        median = step["median"]
        images_per_second = batch_size / (median / 1e3)
        warmup = dict(measured["warmup"][impl])
        warmup["first_call_overhead_ms"] = warmup["first_step_ms"] - median
        results[impl] = {
            "warmup": warmup,
            "train": {
                "ms_per_step": step,
                "ms_per_image": median / batch_size,
                "images_per_second": images_per_second,
                "epoch_seconds_estimated": EPOCH_IMAGES / images_per_second,
                "epoch_seconds_measured": stats(measured["epoch_s"][impl]) if measured["epoch_s"][impl] else None,
                "ratio_to_torch": median / torch_median if torch_median else None,
                "x_of_limit": median / limit_ms,
            },
        }
        if is_compiled(impl):
            results[impl]["train"].update(
                ratio_to_compiled_torch=median / medians[compiled("torch")] if compiled("torch") in medians else None,
                ratio_to_eager=median / medians[eager_impl(impl)] if eager_impl(impl) in medians else None)
    return results


def inference(spec: ModelSpec, models: dict, test, batches_per_round: int, repeats: int,
              device: torch.device) -> dict:
    """{impl: {"batch_size", "images", "images_per_second"}}: the first test batches of 1000, interleaved
    after one untimed pass (the eval-mode kernels' first call)."""
    test_batches = data.Batches(*test, INFERENCE_BATCH)
    batches = [shaped(images, spec.input_shape) for (images, _), _ in zip(test_batches, range(batches_per_round))]
    images = sum(len(b) for b in batches)

    def infer(impl):
        model = models[impl][0]

        def run():
            model.eval()
            with torch.no_grad():
                seconds = clock(lambda: [model(b) for b in batches], device)
            model.train()
            return images / seconds

        return run

    compile_s = {}
    for impl in models:
        before = compile_cost()
        infer(impl)()
        compile_s[impl] = (compile_cost() - before).seconds
    rounds = interleaved({impl: infer(impl) for impl in models}, repeats)
    return {impl: {"batch_size": INFERENCE_BATCH, "images": images, "images_per_second": stats(rounds[impl]),
                   **({"compile_s": compile_s[impl]} if is_compiled(impl) else {})}
            for impl in models}

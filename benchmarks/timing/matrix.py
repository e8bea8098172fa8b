"""Every (model, batch size) point of a run, measured one after the other, and what they show
together: the ratios to native torch against the targets, and the cost growth (time per image
against batch size), which shows where per-call overhead ends and throughput begins.

Per point: training (:mod:`.measure`), the FLOP bound (:mod:`.flops`) and, unless switched off,
the per-layer profile (:mod:`.layers`). Per model: inference at batch 1000 and the memory probes
(:mod:`.memory`, at the largest batch size of the run). With ``--compile`` every impl is timed
compiled too (``<impl>+c``) in the same rounds; the per-layer profile and the memory probes are of
the eager impls (a compiled graph has no layers to time one by one).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from simple_conv_net import data
from simple_conv_net.backends import IMPLS, get_ops

from . import layers, machine, measure, memory
from .core import stats
from .flops import GEMM_SIZE, count_flops

SCHEMA = "simple-conv-net/epoch_timing/2"

# The speed targets, as the ratio of an impl's median step to native torch's in the same run:
# {device type: {impl: ((smallest batch size, target), ...)}}, the last entry whose batch size is
# at most the point's applies.
TARGETS = {
    "cpu": {"vector": ((1, 1.3), (16, 1.0)), "scalar": ((1, 1.5), (16, 1.3))},
    "cuda": {"vector": ((1, 1.0),), "scalar": ((1, 1.5),)},
}
# And under torch.compile (any device): compiled vector at most eager native torch ("ratio_to_torch"),
# compiled scalar at most its own eager steps ("ratio_to_eager"). {impl: (ratio's key, target)}.
COMPILED_TARGETS = {measure.compiled("vector"): ("ratio_to_torch", 1.0),
                    measure.compiled("scalar"): ("ratio_to_eager", 1.0)}


def target(device_type: str, impl: str, batch_size: int) -> float | None:
    rules = TARGETS.get(device_type, {}).get(impl, ())
    applies = [ratio for smallest, ratio in rules if smallest <= batch_size]
    return applies[-1] if applies else None


def model_specs(names: list[str], batch_norm: bool) -> list[measure.ModelSpec]:
    """The models of the run, in the order given; --batch-norm adds LeNet-5 with batch norm after LeNet-5."""
    names = list(dict.fromkeys(names))
    if batch_norm and "lenet5" not in names:
        raise SystemExit("error: --batch-norm adds LeNet-5 with batch norm, so it needs --model lenet5")
    keys = []
    for name in names:
        keys.append(name)
        if name == "lenet5" and batch_norm:
            keys.append("lenet5-bn")
    return [measure.MODELS[key] for key in keys]


def available_impls(requested: list[str] | None) -> tuple[list[str], dict, dict]:
    """The impls to run, {impl: reason} for those skipped (scalar, when scalar_ops does not import),
    and {impl: milliseconds its ops module took to import} (0 for torch: already loaded)."""
    impls = list(dict.fromkeys(requested or IMPLS))
    skipped, import_ms = {}, {}
    for impl in list(impls):
        start = time.perf_counter()
        try:
            get_ops(impl)
        except Exception as error:  # noqa: BLE001 - any failure to import means "not available"
            if impl != "scalar" or requested:
                raise SystemExit(f"error: --impl {impl} cannot run: its ops do not import: "
                                 f"{type(error).__name__}: {error}") from None
            skipped[impl] = f"scalar_ops cannot be imported ({type(error).__name__}: {error})"
            impls.remove(impl)
            continue
        import_ms[impl] = 1e3 * (time.perf_counter() - start)
    return impls, skipped, import_ms


def measure_point(spec, batch_size, impls, state, train, plan, args, device) -> tuple[dict, dict]:
    """(the point's report entry, its measure_training result: models and batch stream)."""
    measured = measure.measure_training(spec, batch_size, impls, state, train, plan, device, args.seed)
    images, labels = next(measured["stream"])
    flops = count_flops(measured["models"][impls[0]][0], images)
    gemm = stats(measured["gemm_rates"])
    limit_ms = 1e3 * flops["total_per_step"] / gemm["median"]
    results = measure.summarise_training(measured, batch_size, limit_ms)
    eager = {impl: models for impl, models in measured["models"].items() if not measure.is_compiled(impl)}
    profile = layers.profile(eager, images, labels, args.layer_reps, device, args.seed) if args.layer_reps else None
    for impl in impls:
        results[impl]["train"]["target"] = target(device.type, impl, batch_size)
        results[impl]["layers"] = profile.get(impl) if profile else None
    point = {
        "model": spec.key, "batch_size": batch_size, "input_shape": list(spec.input_shape),
        "steps_per_round": measured["steps"],
        "bound": {"gemm_size": GEMM_SIZE, "gemm_flops_per_second": gemm, "flops": flops,
                  "limit_ms_per_step": limit_ms},
        "impls": results,
    }
    return point, measured


def cost_growth(points: list[dict]) -> dict:
    """{model: {impl: {batch size: ms per image}}} from the median steps."""
    growth: dict = {}
    for point in points:
        for impl, result in point["impls"].items():
            growth.setdefault(point["model"], {}).setdefault(impl, {})[str(point["batch_size"])] = \
                result["train"]["ms_per_image"]
    return growth


def run(args, script: Path) -> dict:
    device = torch.device(args.device)
    started = machine.details(device)  # the date and the load average before anything is measured
    machine.set_threads(args.threads)
    impls, skipped, import_ms = available_impls(args.impl)
    for impl, reason in skipped.items():
        print(f"note: skipping {impl}: {reason}", file=sys.stderr)
    machine.set_threads(args.threads)  # numba is loaded now when scalar runs
    timed = impls + [measure.compiled(impl) for impl in impls] if args.compile else impls
    try:
        train = tuple(t.to(device) for t in data.load_mnist("train", args.data_dir))
        test = tuple(t.to(device) for t in data.load_mnist("test", args.data_dir))
    except (data.MNISTNotFoundError, data.MNISTFormatError) as error:
        raise SystemExit(f"error: {error}") from None
    specs = model_specs(args.model, args.batch_norm)
    batch_sizes = list(dict.fromkeys(args.batch_size))
    plan = measure.Plan(args.repeats, args.steps, args.budget, args.full_epoch)

    points, per_model, skipped_points = [], {}, []
    for spec in specs:
        state = measure.initial_state(spec, args.seed)
        largest = None
        for batch_size in batch_sizes:
            if spec.batch_norm and batch_size < 2:
                skipped_points.append(f"{spec.key} at batch {batch_size}: batch norm in training needs more than "
                                      f"one value per channel, and its fully connected layers have one per sample")
                continue
            print(f"measuring {spec.key} at batch {batch_size} ...", file=sys.stderr, flush=True)
            if args.compile:
                # Every point builds its models anew, so their graphs are new too. One code object (the
                # models' forward) holds every model's graphs, up to dynamo's limit of 8: start it afresh.
                torch._dynamo.reset()
            point, measured = measure_point(spec, batch_size, timed, state, train, plan, args, device)
            points.append(point)
            if largest is None or batch_size > largest[0]:
                largest = (batch_size, measured)
        if largest is None:
            continue
        models, stream = largest[1]["models"], largest[1]["stream"]
        entry = {"inference": measure.inference(spec, models, test, args.inference_batches, args.repeats, device),
                 "memory": None}
        if not args.no_memory:
            probe_batches = [next(stream) for _ in range(memory.PROBE_STEPS + 1)]
            test_batch = (measure.shaped(test[0][:measure.INFERENCE_BATCH], spec.input_shape),
                          test[1][:measure.INFERENCE_BATCH])
            entry["memory"] = {"batch_size": largest[0], **memory.run_probes(
                script, spec.key, impls, state, probe_batches, test_batch, args.device, args.threads)}
        per_model[spec.key] = entry

    finished = machine.thread_counts()
    finished["load_average_end"] = machine.load_average()
    return {
        "schema": SCHEMA,
        "config": {
            "impls": timed, "skipped": skipped, "skipped_points": skipped_points, "device": str(device),
            "models": {spec.key: {"label": spec.label, "input_shape": list(spec.input_shape)} for spec in specs},
            "batch_sizes": batch_sizes, "steps": args.steps, "budget_s": args.budget, "full_epoch": args.full_epoch,
            "repeats": args.repeats, "threads_requested": args.threads, "seed": args.seed, "lr": measure.LR,
            "momentum": measure.MOMENTUM, "epoch_images": measure.EPOCH_IMAGES, "layer_reps": args.layer_reps,
            "data_dir": str(data.find_mnist(args.data_dir)),
            "targets": TARGETS.get(device.type, {}),
            "compile": args.compile,
            "compiled_targets": {impl: list(rule) for impl, rule in COMPILED_TARGETS.items() if impl in timed},
        },
        "machine": {**started, **finished},
        "import_ms": import_ms,
        "points": points,
        "models": per_model,
        "cost_growth": cost_growth(points),
    }

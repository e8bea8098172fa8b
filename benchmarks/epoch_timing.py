"""How long does one MNIST epoch take with each implementation of SimpleConvNet's layers?

    python benchmarks/epoch_timing.py                          # torch, vector, scalar; 50 steps x 5 repeats
    python benchmarks/epoch_timing.py --impl vector scalar --steps 100 --json runs/timing.json
    python benchmarks/epoch_timing.py --full-epoch --repeats 1   # each repeat is one whole 60,000-image epoch

Everything runs in one process (the memory probes excepted, see below). For each impl a
model is built from the same initial weights (seed ``--seed``) and trained with the
homework's optimizer (SGD, lr 0.01, momentum 0.5) on the same real MNIST batches
(shuffled as train.py shuffles them), so every impl does the same work on the same data.

What is measured, and how:

* warm-up: the import of the ops module and the first training step of each impl, timed on
  their own. For ``scalar`` the first step is where numba compiles its kernels (or loads them
  from its on-disk cache); the first-call overhead is that step minus the steady median step.
* training: ``--repeats`` rounds; in each round every impl runs ``--steps`` training steps
  (zero_grad, forward, nll loss, backward, SGD step), timed as one block. The impls take turns
  within a round and the order rotates from round to round, so a noisy neighbour on a shared
  machine slows every impl alike. ms/step min/median/max are over the rounds; images/s and the
  epoch estimate (60,000 / images per second) come from the median; ``x torch`` is the impl's
  median over native torch's median from the same rounds. The batches are cut before the block
  (batch assembly is the same for every impl, so it is not timed). With ``--full-epoch`` a
  round's block is a whole epoch (the last partial batch included) and its time is reported
  as the measured epoch.
* inference: the test set at batch 1000 under torch.no_grad(), interleaved the same way.
* per layer: each entry of the model's ``layers()`` table (and the nll loss) is fed its real
  input (the previous layer's output on a training batch, as a leaf that requires grad, the
  image excepted, as in training); its forward is timed, then its backward with a fixed random
  upstream gradient. Medians over ``--layer-reps`` interleaved rounds.
* the physical bound: the floating-point operations of one training step, counted from the
  shapes (conv forward 2*N*C_out*H_out*W_out*C_in*K*K, its weight gradient as much again - the
  image needs no gradient, so the input-gradient product is not done and not counted -; each
  fc layer 2*N*D*P forward and twice that backward; bias, pool, relu, log_softmax, nll and the
  SGD update as their elementwise counts), divided by the float32 matrix-multiply rate measured
  in the same run (a square 1024 GEMM, timed in every round). ``x limit`` is an impl's median
  step over that time: how far it is from a machine that did nothing but multiply-adds at
  full GEMM speed.
* peak memory: resident-set growth. RSS is process-wide and the allocator keeps freed pages,
  so each impl is probed in a fresh subprocess: it loads the same weights and batches, takes
  its RSS as the baseline, resets the kernel's high-water mark (``/proc/self/clear_refs``), and
  reports VmHWM minus the baseline over the warm-up step (JIT compilation included), over
  ``min(steps, 5)`` further training steps, and over one batch-1000 inference. glibc's dynamic
  mmap threshold is pinned (``MALLOC_MMAP_THRESHOLD_``) in the probe so freed buffers go back
  to the kernel and are not silently reused across phases. On CUDA the probe also reports
  torch.cuda.max_memory_allocated() growth. ``--no-memory`` skips the probes.

Threads: ``--threads T`` calls torch.set_num_threads(T) (and numba.set_num_threads when the
scalar ops are loaded); one process means every impl runs with the same torch setting, and
the JSON records the thread counts actually in force.

Output: a table first (the homework's question - how long does one epoch take with the scalar
and the vector variant - answered on its own line), then, with ``--json FILE``, every number
and the machine's details as JSON, written to a temporary name and renamed (``--json -``
prints it instead).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: the packages live in the repository
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from simple_conv_net import data  # noqa: E402
from simple_conv_net.backends import IMPLS, get_ops  # noqa: E402
from simple_conv_net.cli import positive_int  # noqa: E402
from simple_conv_net.model import SimpleConvNet  # noqa: E402

SCHEMA = "simple-conv-net/epoch_timing/1"
EPOCH_IMAGES = 60_000
LR, MOMENTUM = 0.01, 0.5
GEMM_SIZE = 1024
MEMORY_PROBE_STEPS = 5
INFERENCE_BATCH = 1000


# ----------------------------------------------------------------------------- arguments


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time training and inference of SimpleConvNet with each ops implementation "
        "(ms/step, images/s, seconds per 60,000-image epoch, per-layer times, memory).")
    parser.add_argument("--impl", nargs="+", choices=IMPLS, default=None,
                        help="implementations to time (default: all three; scalar is skipped with a message "
                        "if scalar_ops cannot be imported)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device, cpu or cuda (default: cuda when available, else cpu)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="training batch size (default: 64)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, default=50,
                        help="training steps per impl per repeat (default: 50)")
    length.add_argument("--full-epoch", action="store_true",
                        help="each repeat trains every impl for one whole epoch (60,000 images)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="interleaved rounds (default: 5)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch (and numba) threads (default: torch's default)")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON ('-': stdout)")
    parser.add_argument("--data-dir", default=None, help="directory with the four MNIST IDX files")
    parser.add_argument("--seed", type=int, default=1, help="seed of the initial weights and the shuffle (default: 1)")
    parser.add_argument("--layer-reps", type=positive_int, default=20,
                        help="interleaved rounds of the per-layer timing (default: 20)")
    parser.add_argument("--inference-batches", type=positive_int, default=None,
                        help="test batches of 1000 per inference round (default: the whole test set)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-impl memory probes (subprocesses)")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)  # internal: run one probe
    return parser.parse_args(argv)


# ----------------------------------------------------------------------------- helpers


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def stats(values) -> dict:
    values = list(values)
    return {"min": min(values), "median": statistics.median(values), "max": max(values), "all": values}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def proc_status_kib(field: str) -> int | None:
    """A ``VmRSS``/``VmHWM``-style field of /proc/self/status, in KiB (None off Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's VmHWM to the current RSS (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    torch.set_num_threads(threads)
    if "numba" in sys.modules:
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def thread_counts() -> dict:
    counts = {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads()}
    if "numba" in sys.modules:
        import numba

        counts["numba_threads"] = numba.get_num_threads()
        counts["numba_threading_layer"] = getattr(numba.config, "THREADING_LAYER", None)
    return counts


def machine_details(device: torch.device) -> dict:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    details = {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch_version": torch.__version__,
        "numba_version": None,
        "numpy_version": None,
        "date": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "device": str(device),
        "load_average_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }
    try:
        import numpy

        details["numpy_version"] = numpy.__version__
    except ImportError:
        pass
    try:
        import numba

        details["numba_version"] = numba.__version__
    except ImportError:
        pass
    if device.type == "cuda":
        details["cuda_device"] = torch.cuda.get_device_name(device)
    return details


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


def training_step(model, optimizer, images, labels):
    optimizer.zero_grad(set_to_none=True)
    loss = model.loss(model(images), labels)
    loss.backward()
    optimizer.step()
    return loss


def make_model(impl: str, state: dict, device: torch.device):
    model = SimpleConvNet(impl).to(device)
    model.load_state_dict(state)
    model.train()
    return model, torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)


# ----------------------------------------------------------------------------- FLOPs and the bound


def count_flops(model: SimpleConvNet, images: torch.Tensor) -> dict:
    """Floating-point operations of one training step, from the shapes of every layer (native ops)."""
    n = images.shape[0]
    layers, a, needs_input_grad = {}, images, False
    with torch.no_grad():
        for name, module_name, fn in model.layers():
            out = fn(get_ops("torch"), a)
            fwd = bwd = 0
            if name == "conv":
                weight = model.conv_layer.weight
                c_out, c_in, k_h, k_w = weight.shape
                products = n * c_out * out.shape[2] * out.shape[3] * c_in * k_h * k_w
                outputs = out.numel()
                fwd = 2 * products + outputs                       # multiply-adds + bias
                bwd = 2 * products + outputs                       # weight gradient + bias gradient
                if needs_input_grad:
                    bwd += 2 * products                            # input gradient
            elif module_name is not None:                          # fc layers
                p, d = getattr(model, module_name).weight.shape
                fwd = 2 * n * d * p + n * p
                bwd = 2 * n * d * p + n * p + (2 * n * d * p if needs_input_grad else 0)
            elif name == "pool":
                window = (a.shape[2] // out.shape[2]) * (a.shape[3] // out.shape[3])
                fwd, bwd = out.numel() * (window - 1), out.numel()  # comparisons; one add per window
            elif name == "relu":
                fwd, bwd = out.numel(), out.numel()
            elif name == "output":                                 # log_softmax: max, sub, exp, sum, log, sub
                fwd, bwd = 5 * out.numel(), 4 * out.numel()
            layers[name] = {"forward": fwd, "backward": bwd}
            needs_input_grad = needs_input_grad or module_name is not None
            a = out
    layers["nll_loss"] = {"forward": n, "backward": n}
    params = sum(p.numel() for p in model.parameters())
    layers["sgd_step"] = {"forward": 0, "backward": 4 * params}    # buf = m*buf + g; p -= lr*buf
    total = sum(v["forward"] + v["backward"] for v in layers.values())
    return {"per_layer": layers, "total_per_step": total, "parameters": params}


def time_gemm(device: torch.device, size: int = GEMM_SIZE, calls: int = 5) -> float:
    """float32 FLOP/s of a square GEMM (mean over ``calls`` after one untimed call)."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    c = torch.empty(size, size, device=device)
    torch.mm(a, b, out=c)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(calls):
        torch.mm(a, b, out=c)
    synchronize(device)
    return 2 * size**3 * calls / (time.perf_counter() - start)


# ----------------------------------------------------------------------------- per-layer timing


def layer_inputs(model: SimpleConvNet, images: torch.Tensor) -> list[torch.Tensor]:
    """The real input of every layer of the table (native ops, so every impl gets the same ones)."""
    inputs, a = [], images
    with torch.no_grad():
        for _, _, fn in model.layers():
            inputs.append(a)
            a = fn(get_ops("torch"), a)
    inputs.append(a)  # the log-probabilities: the loss's input
    return inputs


def time_layers(models: dict, images, labels, reps: int, device: torch.device, seed: int) -> dict:
    """{impl: {layer: {forward_ms, backward_ms}}}: medians over ``reps`` interleaved rounds."""
    first = next(iter(models.values()))[0]
    inputs = layer_inputs(first, images)
    generator = torch.Generator().manual_seed(seed)
    names = [name for name, _, _ in first.layers()] + ["nll_loss"]
    grads = [torch.randn(inputs[i + 1].shape, generator=generator).to(device) for i in range(len(names) - 1)]
    grads.append(torch.ones((), device=device))
    samples = {impl: {name: ([], []) for name in names} for impl in models}
    impls = list(models)
    for rep in range(reps + 1):  # round 0 warms every layer up and is not kept
        order = impls[rep % len(impls):] + impls[:rep % len(impls)]
        for impl in order:
            model = models[impl][0]
            fns = [fn for _, _, fn in model.layers()]
            fns.append(lambda ops, a: ops.nll_loss(a, labels))
            for index, (name, fn) in enumerate(zip(names, fns)):
                a = inputs[index].detach().requires_grad_(index > 0)
                synchronize(device)
                start = time.perf_counter()
                out = fn(model.ops, a)
                synchronize(device)
                middle = time.perf_counter()
                out.backward(grads[index])
                synchronize(device)
                end = time.perf_counter()
                model.zero_grad(set_to_none=True)
                if rep:
                    samples[impl][name][0].append(1e3 * (middle - start))
                    samples[impl][name][1].append(1e3 * (end - middle))
    return {impl: {name: {"forward_ms": statistics.median(f), "backward_ms": statistics.median(b)}
                   for name, (f, b) in per_layer.items()} for impl, per_layer in samples.items()}


# ----------------------------------------------------------------------------- memory probe


def run_memory_probes(impls, state, train_batches, test_batch, args) -> dict:
    """{impl: probe result}, each from a fresh ``python epoch_timing.py --memory-probe`` subprocess."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="epoch_timing_") as directory:
        for impl in impls:
            payload = Path(directory) / f"{impl}.pt"
            torch.save({"impl": impl, "state": state, "device": args.device, "threads": args.threads,
                        "batches": [(x.cpu(), y.cpu()) for x, y in train_batches],
                        "test_batch": tuple(t.cpu() for t in test_batch)}, payload)
            env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
            process = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--memory-probe", str(payload)],
                                     capture_output=True, text=True, env=env, cwd=str(REPO_ROOT))
            lines = process.stdout.strip().splitlines()
            if process.returncode != 0 or not lines:
                results[impl] = {"error": (process.stderr.strip().splitlines() or ["no output"])[-1]}
            else:
                results[impl] = json.loads(lines[-1])
    return results


def memory_probe(payload_path: str) -> int:
    """The subprocess side: peak RSS growth of warm-up, training steps and inference of one impl."""
    payload = torch.load(payload_path, weights_only=False)
    device = torch.device(payload["device"])
    set_threads(payload["threads"])
    impl = payload["impl"]
    get_ops(impl)
    set_threads(payload["threads"])  # numba may have been imported just now
    batches = [(x.to(device), y.to(device)) for x, y in payload["batches"]]
    test_images, _ = (t.to(device) for t in payload["test_batch"])
    model, optimizer = make_model(impl, payload["state"], device)
    del payload
    gc.collect()
    cuda = device.type == "cuda"
    result = {"impl": impl, "method": "VmHWM - VmRSS, peak reset via /proc/self/clear_refs", "steps": len(batches)}

    def phase(name, work):
        gc.collect()
        synchronize(device)
        resettable = reset_peak_rss()
        before = proc_status_kib("VmRSS")
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
            cuda_before = torch.cuda.memory_allocated(device)
        work()
        synchronize(device)
        peak = proc_status_kib("VmHWM")
        if before is None or peak is None:
            result[f"{name}_rss_peak_growth_mib"] = None
        else:
            result[f"{name}_rss_peak_growth_mib"] = max(peak - before, 0) / 1024
        result["peak_reset_supported"] = resettable
        if cuda:
            result[f"{name}_cuda_peak_growth_mib"] = (torch.cuda.max_memory_allocated(device) - cuda_before) / 2**20

    phase("warmup", lambda: training_step(model, optimizer, *batches[0]))

    def train():
        for images, labels in batches[1:]:
            training_step(model, optimizer, images, labels)

    phase("train", train)
    model.eval()

    def infer():
        with torch.no_grad():
            model(test_images)

    phase("inference", infer)
    result["baseline_rss_mib"] = (proc_status_kib("VmRSS") or 0) / 1024
    print(json.dumps(result))
    return 0


# ----------------------------------------------------------------------------- the benchmark


def run(args) -> dict:
    device = torch.device(args.device)
    set_threads(args.threads)
    impls, skipped, import_ms = available_impls(args.impl)
    for impl, reason in skipped.items():
        print(f"note: skipping {impl}: {reason}", file=sys.stderr)
    set_threads(args.threads)  # numba is loaded now when scalar runs

    try:
        train = data.load_mnist("train", args.data_dir)
        test = data.load_mnist("test", args.data_dir)
    except (data.MNISTNotFoundError, data.MNISTFormatError) as error:
        raise SystemExit(f"error: {error}") from None
    train_batches = data.Batches(*(t.to(device) for t in train), args.batch_size, shuffle=True, seed=args.seed)
    test_batches = data.Batches(*(t.to(device) for t in test), INFERENCE_BATCH)
    steps = len(train_batches) if args.full_epoch else args.steps
    inference_batches = min(args.inference_batches or len(test_batches), len(test_batches))

    def batch_stream():
        epoch = 0
        while True:
            yield from train_batches.epoch(epoch)
            epoch += 1

    stream = batch_stream()

    torch.manual_seed(args.seed)
    initial_state = {k: v.clone() for k, v in SimpleConvNet("torch").state_dict().items()}
    models, warmup = {}, {}
    for impl in impls:
        models[impl] = make_model(impl, initial_state, device)
        warmup[impl] = {"import_ms": import_ms[impl]}
    set_threads(args.threads)
    threads = thread_counts()

    # Warm-up: the first step (JIT compilation / cache loading for scalar), then a few more.
    warm_batches = [next(stream) for _ in range(4)]
    for impl in impls:
        model, optimizer = models[impl]
        synchronize(device)
        start = time.perf_counter()
        training_step(model, optimizer, *warm_batches[0])
        synchronize(device)
        warmup[impl]["first_step_ms"] = 1e3 * (time.perf_counter() - start)
        start = time.perf_counter()
        model.eval()
        with torch.no_grad():
            model(test_batches.images[:INFERENCE_BATCH])
        model.train()
        synchronize(device)
        warmup[impl]["first_inference_ms"] = 1e3 * (time.perf_counter() - start)
        for images, labels in warm_batches[1:]:
            training_step(model, optimizer, images, labels)
        synchronize(device)

    train_ms = {impl: [] for impl in impls}
    epoch_s = {impl: [] for impl in impls}
    inference_ips = {impl: [] for impl in impls}
    gemm_rates = []
    test_list = [batch for _, batch in zip(range(inference_batches), test_batches.epoch(0))]
    inference_images = sum(len(labels) for _, labels in test_list)
    for rep in range(args.repeats):
        block = [next(stream) for _ in range(steps)] if not args.full_epoch else list(train_batches.epoch(rep + 1))
        order = impls[rep % len(impls):] + impls[:rep % len(impls)]
        gemm_rates.append(time_gemm(device))
        for impl in order:
            model, optimizer = models[impl]
            synchronize(device)
            start = time.perf_counter()
            for images, labels in block:
                training_step(model, optimizer, images, labels)
            synchronize(device)
            seconds = time.perf_counter() - start
            train_ms[impl].append(1e3 * seconds / len(block))
            if args.full_epoch:
                epoch_s[impl].append(seconds)
        for impl in order:
            model = models[impl][0]
            model.eval()
            synchronize(device)
            start = time.perf_counter()
            with torch.no_grad():
                for images, _ in test_list:
                    model(images)
            synchronize(device)
            inference_ips[impl].append(inference_images / (time.perf_counter() - start))
            model.train()

    layer_images, layer_labels = next(stream)
    layers = time_layers(models, layer_images, layer_labels, args.layer_reps, device, args.seed)
    flops = count_flops(models[impls[0]][0], layer_images)
    gemm = stats(gemm_rates)
    limit_ms = 1e3 * flops["total_per_step"] / gemm["median"]

    memory = {}
    if not args.no_memory:
        probe_batches = [next(stream) for _ in range(min(steps, MEMORY_PROBE_STEPS) + 1)]
        memory = run_memory_probes(impls, initial_state, probe_batches, test_list[0], args)

    torch_median = statistics.median(train_ms["torch"]) if "torch" in train_ms else None
    results = {}
    for impl in impls:
        step = stats(train_ms[impl])
        median = step["median"]
        images_per_second = args.batch_size / (median / 1e3)
        warmup[impl]["first_call_overhead_ms"] = warmup[impl]["first_step_ms"] - median
        results[impl] = {
            "warmup": warmup[impl],
            "train": {
                "ms_per_step": step,
                "images_per_second": images_per_second,
                "epoch_seconds_estimated": EPOCH_IMAGES / images_per_second,
                "epoch_seconds_measured": stats(epoch_s[impl]) if epoch_s[impl] else None,
                "ratio_to_torch": median / torch_median if torch_median else None,
                "x_of_limit": median / limit_ms,
            },
            "inference": {"batch_size": INFERENCE_BATCH, "images": inference_images,
                          "images_per_second": stats(inference_ips[impl])},
            "memory": memory.get(impl),
            "layers": layers[impl],
        }
    machine = machine_details(device)
    machine.update(threads)
    machine["load_average_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {
        "schema": SCHEMA,
        "config": {
            "impls": impls, "skipped": skipped, "device": str(device), "batch_size": args.batch_size,
            "steps_per_repeat": steps, "full_epoch": args.full_epoch, "repeats": args.repeats,
            "threads_requested": args.threads, "seed": args.seed, "lr": LR, "momentum": MOMENTUM,
            "epoch_images": EPOCH_IMAGES, "layer_reps": args.layer_reps,
            "data_dir": str(data.find_mnist(args.data_dir)),
        },
        "machine": machine,
        "bound": {"gemm_size": GEMM_SIZE, "gemm_flops_per_second": gemm, "flops": flops,
                  "limit_ms_per_step": limit_ms},
        "impls": results,
    }


# ----------------------------------------------------------------------------- report


def format_report(report: dict) -> str:
    config, machine, impls = report["config"], report["machine"], report["impls"]
    names = list(impls)
    out = []
    length = "one full epoch" if config["full_epoch"] else f"{config['steps_per_repeat']} steps"
    out.append(f"SimpleConvNet on MNIST, training batch {config['batch_size']}: {length} x {config['repeats']} "
               f"interleaved repeats per impl, device {config['device']}")
    cores = machine["usable_cores"]
    numba_threads = f", numba {machine['numba_threads']}" if "numba_threads" in machine else ""
    out.append(f"{machine['cpu_model']}, {cores} usable cores, threads: torch {machine['torch_threads']}"
               f"{numba_threads}; torch {machine['torch_version']}, numba {machine['numba_version']}; "
               f"{machine['date']}; load average {machine['load_average_start'][0]:.2f} at start")
    for impl, reason in config["skipped"].items():
        out.append(f"SKIPPED {impl}: {reason}")
    out.append("")
    header = (f"{'impl':<8}{'ms/step min':>12}{'median':>9}{'max':>9}{'images/s':>10}"
              f"{'epoch s (est.)':>16}{'epoch s (meas.)':>17}{'x torch':>9}{'x limit':>9}")
    out.append("training (forward + backward + SGD step)")
    out.append(header)
    for impl in names:
        t = impls[impl]["train"]
        step = t["ms_per_step"]
        measured = f"{t['epoch_seconds_measured']['median']:.1f}" if t["epoch_seconds_measured"] else "-"
        ratio = f"{t['ratio_to_torch']:.2f}" if t["ratio_to_torch"] else "-"
        out.append(f"{impl:<8}{step['min']:>12.2f}{step['median']:>9.2f}{step['max']:>9.2f}"
                   f"{t['images_per_second']:>10.0f}{t['epoch_seconds_estimated']:>16.1f}{measured:>17}"
                   f"{ratio:>9}{t['x_of_limit']:>9.1f}")
    out.append("")
    answer = ", ".join(f"{impl} {impls[impl]['train']['epoch_seconds_estimated']:.1f} s" for impl in names)
    out.append(f"ANSWER - time on one epoch ({config['epoch_images']} images, batch {config['batch_size']}, "
               f"from the median step): {answer}")
    out.append("")

    out.append("warm-up (own line; scalar's first step is where numba compiles or loads its cached kernels):")
    for impl in names:
        w = impls[impl]["warmup"]
        out.append(f"  {impl:<7} import {w['import_ms']:8.1f} ms   first training step {w['first_step_ms']:9.1f} ms "
                   f"(JIT / first-call overhead {w['first_call_overhead_ms']:+9.1f} ms over the median step)   "
                   f"first batch-1000 inference {w['first_inference_ms']:8.1f} ms")
    out.append("")
    first = impls[names[0]]["inference"]
    out.append(f"inference on the test set, batch {first['batch_size']}, {first['images']} images per round "
               f"(torch.no_grad):")
    for impl in names:
        ips = impls[impl]["inference"]["images_per_second"]
        out.append(f"  {impl:<7} {ips['median']:9.0f} images/s  (min {ips['min']:.0f}, max {ips['max']:.0f})")
    out.append("")

    if any(impls[impl]["memory"] for impl in names):
        out.append("peak memory growth (fresh subprocess per impl; RSS high-water mark over the phase minus RSS "
                   "before it, MiB):")
        for impl in names:
            m = impls[impl]["memory"]
            if m is None:
                continue
            if "error" in m:
                out.append(f"  {impl:<7} probe failed: {m['error']}")
                continue
            line = (f"  {impl:<7} warm-up step {m['warmup_rss_peak_growth_mib']:7.1f}   "
                    f"{m['steps']} training steps {m['train_rss_peak_growth_mib']:7.1f}   "
                    f"inference batch 1000 {m['inference_rss_peak_growth_mib']:7.1f}")
            if "train_cuda_peak_growth_mib" in m:
                line += (f"   CUDA allocated: train {m['train_cuda_peak_growth_mib']:.1f}, "
                         f"inference {m['inference_cuda_peak_growth_mib']:.1f}")
            if not m.get("peak_reset_supported", True):
                line += "   (peak could not be reset: upper bound)"
            out.append(line)
        out.append("")

    bound = report["bound"]
    flops = bound["flops"]
    gemm = bound["gemm_flops_per_second"]
    out.append(f"physical bound: {flops['total_per_step'] / 1e6:.1f} MFLOP per training step (from the shapes) / "
               f"{gemm['median'] / 1e9:.1f} GFLOP/s (float32 {bound['gemm_size']}^3 GEMM, median of the rounds; "
               f"{gemm['min'] / 1e9:.1f}..{gemm['max'] / 1e9:.1f}) = {bound['limit_ms_per_step']:.2f} ms/step")
    out.append("  " + ", ".join(f"{impl} {impls[impl]['train']['x_of_limit']:.1f}x of the limit" for impl in names))
    out.append("")

    out.append(f"per layer, ms (median of {config['layer_reps']} interleaved rounds; real inputs, backward with a "
               f"fixed upstream gradient; MFLOP fwd/bwd from the shapes):")
    head = f"{'layer':<12}{'MFLOP':>12}"
    for impl in names:
        head += f"{impl + ' fwd':>13}{'bwd':>8}"
    if "torch" in names:
        for impl in names:
            if impl != "torch":
                head += f"{impl + ' x torch':>16}"
    out.append(head)
    layer_names = list(impls[names[0]]["layers"])
    totals = {impl: [0.0, 0.0] for impl in names}
    for layer in layer_names:
        fl = flops["per_layer"].get(layer, {"forward": 0, "backward": 0})
        row = f"{layer:<12}{fl['forward'] / 1e6:>6.1f}/{fl['backward'] / 1e6:<5.1f}"
        for impl in names:
            entry = impls[impl]["layers"][layer]
            totals[impl][0] += entry["forward_ms"]
            totals[impl][1] += entry["backward_ms"]
            row += f"{entry['forward_ms']:>13.3f}{entry['backward_ms']:>8.3f}"
        if "torch" in names:
            ref = impls["torch"]["layers"][layer]
            ref_total = ref["forward_ms"] + ref["backward_ms"]
            for impl in names:
                if impl != "torch":
                    entry = impls[impl]["layers"][layer]
                    row += f"{(entry['forward_ms'] + entry['backward_ms']) / ref_total:>16.2f}"
        out.append(row)
    row = f"{'sum':<12}{'':>12}"
    for impl in names:
        row += f"{totals[impl][0]:>13.3f}{totals[impl][1]:>8.3f}"
    if "torch" in names:
        ref_total = sum(totals["torch"])
        for impl in names:
            if impl != "torch":
                row += f"{sum(totals[impl]) / ref_total:>16.2f}"
    out.append(row)
    out.append("(layer names as in the model's layers() table: reshape = flatten, output = log_softmax; "
               "the rest of a step is autograd bookkeeping and the SGD update)")
    return "\n".join(out)


def write_json(report: dict, target: str) -> None:
    text = json.dumps(report, indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
        return
    path = Path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as out:
            out.write(text)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.memory_probe:
        return memory_probe(args.memory_probe)
    report = run(args)
    print(format_report(report), flush=True)
    if args.json:
        write_json(report, args.json)
        if args.json != "-":
            print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Peak memory of each impl: resident-set growth, each impl in a fresh subprocess.

RSS is process-wide and the allocator keeps freed pages, so each impl is probed in a fresh
``python epoch_timing.py --memory-probe FILE`` subprocess: it loads the same weights and batches,
takes its RSS as the baseline, resets the kernel's high-water mark (``/proc/self/clear_refs``),
and reports VmHWM minus the baseline over the warm-up step (JIT compilation included), over a
few further training steps, and over one batch-1000 inference. glibc's dynamic mmap threshold is
pinned (``MALLOC_MMAP_THRESHOLD_``) in the probe so freed buffers go back to the kernel and are
not silently reused across phases. On CUDA the probe also reports torch.cuda.max_memory_allocated()
growth.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from simple_conv_net.backends import get_ops

from .core import synchronize
from .machine import set_threads
from .measure import MODELS, make_model, training_step

PROBE_STEPS = 5


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


def run_probes(script: Path, model_key: str, impls, state, train_batches, test_batch, device: str,
               threads: int | None) -> dict:
    """{impl: probe result}, each from a fresh ``python <script> --memory-probe`` subprocess."""
    results = {}
    with tempfile.TemporaryDirectory(prefix="epoch_timing_") as directory:
        for impl in impls:
            payload = Path(directory) / f"{impl}.pt"
            torch.save({"impl": impl, "model": model_key, "state": state, "device": device, "threads": threads,
                        "batches": [(x.cpu(), y.cpu()) for x, y in train_batches],
                        "test_batch": tuple(t.cpu() for t in test_batch)}, payload)
            env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="131072")
            process = subprocess.run([sys.executable, str(script), "--memory-probe", str(payload)],
                                     capture_output=True, text=True, env=env, cwd=str(script.parents[1]))
            lines = process.stdout.strip().splitlines()
            if process.returncode != 0 or not lines:
                results[impl] = {"error": (process.stderr.strip().splitlines() or ["no output"])[-1]}
            else:
                results[impl] = json.loads(lines[-1])
    return results


def probe(payload_path: str) -> int:
    """The subprocess side: peak RSS growth of warm-up, training steps and inference of one impl."""
    payload = torch.load(payload_path, weights_only=False)
    device = torch.device(payload["device"])
    set_threads(payload["threads"])
    impl = payload["impl"]
    get_ops(impl)
    set_threads(payload["threads"])  # numba may have been imported just now
    batches = [(x.to(device), y.to(device)) for x, y in payload["batches"]]
    test_images, _ = (t.to(device) for t in payload["test_batch"])
    model, optimizer = make_model(MODELS[payload["model"]], impl, payload["state"], device)
    del payload
    gc.collect()
    cuda = device.type == "cuda"
    result = {"impl": impl, "method": "VmHWM - VmRSS, peak reset via /proc/self/clear_refs", "steps": len(batches) - 1}

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

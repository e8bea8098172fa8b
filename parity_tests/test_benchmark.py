"""Smoke test of benchmarks/epoch_timing.py: a tiny run of every available impl writes complete JSON.

No time is asserted (the machine is shared and noisy); only that every impl ran and every field
the report promises is there and sane. Needs the MNIST files (skipped when they are not found).
"""

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

from simple_conv_net import data
from simple_conv_net.model import SimpleConvNet

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "epoch_timing.py"
LAYERS = ("conv", "pool", "reshape", "fc1", "relu", "fc2", "output", "nll_loss")


@pytest.fixture(scope="module")
def epoch_timing():
    spec = importlib.util.spec_from_file_location("epoch_timing", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mnist_dir():
    try:
        return data.find_mnist()
    except data.MNISTNotFoundError as error:
        pytest.skip(f"MNIST not available: {error}")


def scalar_importable() -> bool:
    try:
        importlib.import_module("scalar_ops")
    except Exception:  # noqa: BLE001 - the benchmark skips it for any import failure too
        return False
    return True


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_tiny_run_writes_every_field(epoch_timing, mnist_dir, tmp_path, capsys):
    out = tmp_path / "timing.json"
    code = epoch_timing.main(["--steps", "2", "--repeats", "1", "--layer-reps", "1", "--inference-batches", "1",
                              "--no-memory", "--data-dir", str(mnist_dir), "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "ANSWER - time on one epoch" in printed and "per layer" in printed
    assert printed.index("ANSWER") < printed.index("wrote")  # the table comes first, then the JSON file

    report = json.loads(out.read_text())
    assert not list(tmp_path.glob(".timing.json.*")), "the temporary file was left behind"
    assert report["schema"] == epoch_timing.SCHEMA
    expected = ["torch", "vector"] + (["scalar"] if scalar_importable() else [])
    assert report["config"]["impls"] == expected, report["config"]["skipped"]
    assert set(report["impls"]) == set(expected)
    assert report["config"]["steps_per_repeat"] == 2 and report["config"]["repeats"] == 1

    machine = report["machine"]
    for key in ("cpu_model", "logical_cores", "torch_threads", "torch_version", "numba_version", "date"):
        assert machine[key] not in (None, ""), key
    if "scalar" in expected:
        assert machine["numba_threads"] >= 1

    bound = report["bound"]
    assert positive(bound["gemm_flops_per_second"]["median"]) and positive(bound["limit_ms_per_step"])
    # Counted from the shapes: conv forward 2*64*20*24*24*25, fc1 forward 2*64*2880*500.
    assert bound["flops"]["per_layer"]["conv"]["forward"] == 2 * 64 * 20 * 24 * 24 * 25 + 64 * 20 * 24 * 24
    assert bound["flops"]["per_layer"]["fc1"]["forward"] == 2 * 64 * 2880 * 500 + 64 * 500

    for impl in expected:
        result = report["impls"][impl]
        train = result["train"]
        step = train["ms_per_step"]
        assert len(step["all"]) == 1 and step["min"] <= step["median"] <= step["max"]
        assert positive(step["median"]) and positive(train["images_per_second"])
        assert positive(train["epoch_seconds_estimated"]) and positive(train["x_of_limit"])
        assert train["epoch_seconds_measured"] is None
        assert positive(train["ratio_to_torch"])
        assert positive(result["warmup"]["first_step_ms"]) and "first_call_overhead_ms" in result["warmup"]
        assert positive(result["inference"]["images_per_second"]["median"])
        assert result["inference"]["images"] == 1000
        assert result["memory"] is None
        assert set(result["layers"]) == set(LAYERS)
        for layer in LAYERS:
            assert positive(result["layers"][layer]["forward_ms"]) and positive(result["layers"][layer]["backward_ms"])
    assert report["impls"]["torch"]["train"]["ratio_to_torch"] == 1.0


def test_memory_probe_reports_peak_growth(epoch_timing, mnist_dir):
    """One probe subprocess (vector: no numba to load), on real batches."""
    images, labels = data.load_mnist("test", mnist_dir)
    batches = [(images[i:i + 8], labels[i:i + 8]) for i in range(0, 24, 8)]
    torch.manual_seed(0)
    state = SimpleConvNet("torch").state_dict()
    args = epoch_timing.parse_args(["--device", "cpu"])
    probes = epoch_timing.run_memory_probes(["vector"], state, batches, (images[:100], labels[:100]), args)
    probe = probes["vector"]
    assert "error" not in probe, probe
    assert probe["impl"] == "vector" and probe["steps"] == 3
    for phase in ("warmup", "train", "inference"):
        assert probe[f"{phase}_rss_peak_growth_mib"] >= 0
    assert probe["baseline_rss_mib"] > 0

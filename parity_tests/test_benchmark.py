"""Smoke test of benchmarks/epoch_timing.py: tiny runs of every available impl write complete JSON.

No time is asserted (the machine is shared and noisy); only that every impl ran at every point and
every field the report promises is there and sane. Needs the MNIST files (skipped when not found).
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
SIMPLE_LAYERS = ("conv", "pool", "reshape", "fc1", "relu", "fc2", "output", "nll_loss")


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


def expected_impls():
    return ["torch", "vector"] + (["scalar"] if scalar_importable() else [])


def test_tiny_run_writes_every_field(epoch_timing, mnist_dir, tmp_path, capsys):
    out = tmp_path / "timing.json"
    code = epoch_timing.main(["--steps", "2", "--repeats", "1", "--layer-reps", "1", "--inference-batches", "1",
                              "--no-memory", "--data-dir", str(mnist_dir), "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "ANSWER - time on one epoch" in printed and "per layer" in printed
    assert printed.count("ANSWER") == 1
    assert printed.index("ANSWER") < printed.index("wrote")  # the table comes first, then the JSON file

    report = json.loads(out.read_text())
    assert not list(tmp_path.glob(".timing.json.*")), "the temporary file was left behind"
    assert report["schema"] == epoch_timing.SCHEMA
    expected = expected_impls()
    assert report["config"]["impls"] == expected, report["config"]["skipped"]
    assert report["config"]["steps"] == 2 and report["config"]["repeats"] == 1

    machine = report["machine"]
    for key in ("cpu_model", "logical_cores", "torch_threads", "torch_version", "numba_version", "date",
                "load_average_start", "load_average_end"):
        assert machine[key] not in (None, ""), key
    if "scalar" in expected:
        assert machine["numba_threads"] >= 1

    (point,) = report["points"]
    assert point["model"] == "simple" and point["batch_size"] == 64 and point["steps_per_round"] == 2
    assert set(point["impls"]) == set(expected)
    bound = point["bound"]
    assert positive(bound["gemm_flops_per_second"]["median"]) and positive(bound["limit_ms_per_step"])
    # Counted from the shapes: conv forward 2*64*20*24*24*25 (+ bias), fc1 forward 2*64*2880*500 (+ bias);
    # the image needs no gradient, fc1's input does.
    conv, fc1 = bound["flops"]["per_layer"]["conv"], bound["flops"]["per_layer"]["fc1"]
    assert conv["forward"] == conv["backward"] == 2 * 64 * 20 * 24 * 24 * 25 + 64 * 20 * 24 * 24
    assert fc1["forward"] == 2 * 64 * 2880 * 500 + 64 * 500 and fc1["backward"] == fc1["forward"] + 2 * 64 * 2880 * 500

    for impl in expected:
        result = point["impls"][impl]
        train = result["train"]
        step = train["ms_per_step"]
        assert len(step["all"]) == 1 and step["min"] <= step["median"] <= step["max"]
        assert positive(step["median"]) and positive(train["images_per_second"])
        assert train["ms_per_image"] == pytest.approx(step["median"] / 64)
        assert positive(train["epoch_seconds_estimated"]) and positive(train["x_of_limit"])
        assert train["epoch_seconds_measured"] is None
        assert positive(train["ratio_to_torch"])
        assert positive(result["warmup"]["first_step_ms"]) and "first_call_overhead_ms" in result["warmup"]
        assert set(result["layers"]) == set(SIMPLE_LAYERS)
        for layer in SIMPLE_LAYERS:
            assert positive(result["layers"][layer]["forward_ms"]) and positive(result["layers"][layer]["backward_ms"])
        inference = report["models"]["simple"]["inference"][impl]
        assert positive(inference["images_per_second"]["median"]) and inference["images"] == 1000
    assert point["impls"]["torch"]["train"]["ratio_to_torch"] == 1.0
    assert point["impls"]["vector"]["train"]["target"] == 1.0  # the CPU target from batch 16 on
    assert report["models"]["simple"]["memory"] is None


def test_matrix_of_models_and_batch_sizes(epoch_timing, mnist_dir, tmp_path, capsys):
    """Two models (LeNet-5 without and with batch norm) at two batch sizes: every point, the ratio matrix,
    the cost growth and its plot; batch norm cannot train at batch 1 and that point is skipped with a reason."""
    out, png = tmp_path / "matrix.json", tmp_path / "growth.png"
    code = epoch_timing.main(["--model", "lenet5", "--batch-norm", "--batch-size", "1", "4",
                              "--impl", "torch", "vector", "--steps", "1", "--repeats", "1", "--layer-reps", "1",
                              "--inference-batches", "1", "--no-memory", "--data-dir", str(mnist_dir),
                              "--json", str(out), "--plot", str(png)])
    assert code == 0
    printed = capsys.readouterr().out
    for section in ("ratio to native torch", "cost growth", "SKIPPED lenet5-bn at batch 1", "rest of step"):
        assert section in printed, section
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    report = json.loads(out.read_text())
    points = [(p["model"], p["batch_size"]) for p in report["points"]]
    assert points == [("lenet5", 1), ("lenet5", 4), ("lenet5-bn", 4)]
    assert report["points"][0]["input_shape"] == [3, 32, 32]
    bn_layers = set(report["points"][2]["impls"]["vector"]["layers"])
    assert {"bn1", "bn2", "bn3", "bn4", "conv1", "fc3", "nll_loss"} <= bn_layers
    assert report["points"][2]["bound"]["flops"]["per_layer"]["bn1"]["op"] == "batch_norm"
    growth = report["cost_growth"]
    assert set(growth) == {"lenet5", "lenet5-bn"} and set(growth["lenet5-bn"]["vector"]) == {"4"}
    assert growth["lenet5"]["vector"]["4"] == pytest.approx(
        report["points"][1]["impls"]["vector"]["train"]["ms_per_step"]["median"] / 4)
    assert report["points"][0]["impls"]["vector"]["train"]["target"] == 1.3  # batch 1's looser target


def test_memory_probe_reports_peak_growth(epoch_timing, mnist_dir):
    """One probe subprocess (vector: no numba to load), on real batches."""
    from benchmarks.timing import memory

    images, labels = data.load_mnist("test", mnist_dir)
    batches = [(images[i:i + 8], labels[i:i + 8]) for i in range(0, 24, 8)]
    torch.manual_seed(0)
    state = SimpleConvNet("torch").state_dict()
    probes = memory.run_probes(SCRIPT, "simple", ["vector"], state, batches, (images[:100], labels[:100]), "cpu", None)
    probe = probes["vector"]
    assert "error" not in probe, probe
    assert probe["impl"] == "vector" and probe["steps"] == 2
    for phase in ("warmup", "train", "inference"):
        assert probe[f"{phase}_rss_peak_growth_mib"] >= 0
    assert probe["baseline_rss_mib"] > 0


@pytest.mark.parametrize("value", ["inf", "nan", "0"])
def test_budget_takes_a_positive_finite_number(epoch_timing, value):
    with pytest.raises(SystemExit):
        epoch_timing.parse_args(["--budget", value])

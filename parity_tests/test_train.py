"""train.py end to end on small MNIST subsets: metrics, checkpoints, resume, errors."""

import importlib.util
import json
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("train", ROOT / "train.py")
train = importlib.util.module_from_spec(spec)
spec.loader.exec_module(train)

QUICK = ["--train-samples", "256", "--test-samples", "200", "--batch-size", "32", "--test-batch-size", "100"]


def run(tmp_path, name, *extra):
    out = tmp_path / name
    assert train.main([*QUICK, "--out", str(out), *extra]) == 0
    return out


def test_metrics_and_checkpoint(tmp_path, impl):
    out = run(tmp_path, "run", "--impl", impl, "--epochs", "2", "--save-model")
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["epoch"] for m in lines] == [1, 2]
    for m in lines:
        assert 0.0 <= m["test_accuracy"] <= 1.0 and m["test_loss"] > 0 and m["seconds"] > 0
    assert lines[1]["train_loss"] < lines[0]["train_loss"]
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and state["args"]["impl"] == impl and len(state["metrics"]) == 2
    assert set(state["model"]) == {"conv_layer.weight", "conv_layer.bias", "fc_layer1.weight", "fc_layer1.bias",
                                   "fc_layer2.weight", "fc_layer2.bias"}
    final = torch.load(out / "model.pt", weights_only=True)
    torch.testing.assert_close(final["fc_layer2.weight"], state["model"]["fc_layer2.weight"], rtol=0, atol=0)
    assert not list(out.glob(".*.tmp")), "temporary files left behind"


def test_resume_ends_with_the_same_weights(tmp_path):
    straight = run(tmp_path, "straight", "--impl", "vector", "--epochs", "3")
    resumed = run(tmp_path, "resumed", "--impl", "vector", "--epochs", "1")
    run(tmp_path, "resumed", "--impl", "vector", "--epochs", "3", "--resume")
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(resumed / "checkpoint.pt", weights_only=True)
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name
    assert [m["test_loss"] for m in a["metrics"]] == [m["test_loss"] for m in b["metrics"]]
    assert len((resumed / "metrics.jsonl").read_text().splitlines()) == 3


def test_interrupt_keeps_last_complete_checkpoint(tmp_path, monkeypatch, capsys):
    out = run(tmp_path, "run", "--impl", "vector", "--epochs", "1")
    before = (out / "checkpoint.pt").read_bytes()
    original = train.train_epoch

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_epoch", interrupted)
    assert train.main([*QUICK, "--out", str(out), "--impl", "vector", "--epochs", "2", "--resume"]) == 130
    monkeypatch.setattr(train, "train_epoch", original)
    hint = capsys.readouterr().err.split("Continue with: ")[1]
    assert "--train-samples 256" in hint and "--epochs 2" in hint and hint.strip().endswith("--resume")
    assert (out / "checkpoint.pt").read_bytes() == before
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1


def test_unknown_impl_lists_choices(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--impl", "numpy"])
    assert "choose from 'torch', 'vector', 'scalar'" in capsys.readouterr().err


def test_resume_needs_out(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--resume"])
    assert "--out" in capsys.readouterr().err


def test_missing_mnist_says_where_it_looked(tmp_path, capsys):
    assert train.main(["--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "--data-dir" in err


def test_own_sgd_trains_like_torch_sgd(tmp_path):
    """--optimizer own (the handouts' equations) and torch.optim.SGD reach the same weights (constant lr)."""
    flags = ["--impl", "vector", "--epochs", "1", "--weight-decay", "0.001"]
    own = torch.load(run(tmp_path, "own", *flags, "--optimizer", "own") / "checkpoint.pt", weights_only=True)
    ref = torch.load(run(tmp_path, "torch", *flags, "--optimizer", "torch") / "checkpoint.pt", weights_only=True)
    for name, weight in ref["model"].items():
        torch.testing.assert_close(own["model"][name], weight, rtol=1e-5, atol=1e-7)


def test_lr_policy_and_resume(tmp_path):
    """The eq. 11 policy is stepped per batch and resumes where it stopped."""
    flags = ["--impl", "vector", "--optimizer", "own", "--lr-gamma", "0.1", "--lr-power", "0.75"]
    straight = run(tmp_path, "straight", *flags, "--epochs", "2")
    run(tmp_path, "resumed", *flags, "--epochs", "1")
    resumed = run(tmp_path, "resumed", *flags, "--epochs", "2", "--resume")
    a = torch.load(straight / "checkpoint.pt", weights_only=True)
    b = torch.load(resumed / "checkpoint.pt", weights_only=True)
    steps = 2 * 256 // 32
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == steps
    assert a["optimizer"]["param_groups"][0]["lr"] == pytest.approx(0.01 / (1 + 0.1 * steps) ** 0.75)
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name]), name


def test_moving_average_needs_own_optimizer(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--momentum-form", "moving_average"])
    assert "--momentum-form" in capsys.readouterr().err


@pytest.mark.parametrize("change", [["--batch-size", "16"], ["--seed", "2"], ["--optimizer", "own"]])
def test_resume_refuses_a_different_run(tmp_path, capsys, change):
    run(tmp_path, "run", "--impl", "vector", "--epochs", "1")
    assert train.main([*QUICK, "--out", str(tmp_path / "run"), "--epochs", "2", "--resume", *change]) == 2
    assert f"argument {change[0]}" in capsys.readouterr().err


def test_resume_without_checkpoint(tmp_path, capsys):
    assert train.main([*QUICK, "--out", str(tmp_path / "empty"), "--resume"]) == 2
    assert "expected a checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["bin", "py"])
def test_lenet5_on_test_made_cifar10(tmp_path, fmt):
    """python train.py --model lenet5 --dataset cifar10 --data-dir DIR, on small files in the official formats."""
    from simple_conv_net import cifar10

    directory = tmp_path / "data" / cifar10.DIRS[fmt]
    directory.mkdir(parents=True)
    write = cifar10.write_binary_batch if fmt == "bin" else cifar10.write_python_batch
    generator = torch.Generator().manual_seed(0)
    for name in cifar10.BATCHES["train"] + cifar10.BATCHES["test"]:
        images = torch.randint(0, 256, (12, 3, 32, 32), generator=generator, dtype=torch.uint8)
        write(directory / f"{name}{cifar10.SUFFIX[fmt]}", images, torch.randint(0, 10, (12,), generator=generator))
    out = tmp_path / "run"
    args = ["--model", "lenet5", "--dataset", "cifar10", "--data-dir", str(tmp_path / "data"), "--impl", "vector",
            "--epochs", "2", "--batch-size", "16", "--out", str(out)]
    assert train.main(args) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert state["args"]["dataset"] == "cifar10" and state["model"]["conv1.weight"].shape == (6, 3, 5, 5)
    assert [m["epoch"] for m in state["metrics"]] == [1, 2]

"""train.py end to end on small MNIST subsets: metrics, checkpoints, resume, errors."""

import importlib.util
import json
import os
import pickle
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from simple_conv_net.model import SimpleConvNet

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


# ----------------------------------------------------------------------------- faults and bad input (issue 14)

TINY = ["--train-samples", "64", "--test-samples", "64", "--batch-size", "16", "--test-batch-size", "64",
        "--impl", "vector"]  # 4 steps an epoch


def tiny(out, *extra) -> int:
    return train.main([*TINY, "--out", str(out), *extra])


def checkpoint_of(out):
    return torch.load(out / "checkpoint.pt", weights_only=True)


def metrics_of(out) -> list:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_resume_applies_changed_hyperparameters_and_records_them(tmp_path):
    out = tmp_path / "run"
    assert tiny(out, "--epochs", "1") == 0
    assert tiny(out, "--epochs", "2", "--resume", "--lr", "0.05", "--momentum", "0.9", "--weight-decay", "0.001") == 0
    state = checkpoint_of(out)
    weights, biases = state["optimizer"]["param_groups"]  # the groups the steps of epoch 2 ran with
    assert weights["lr"] == biases["lr"] == 0.05 and weights["momentum"] == biases["momentum"] == 0.9
    assert weights["weight_decay"] == 0.001 and biases["weight_decay"] == 0.0  # the weights only, as in a new run
    assert (state["args"]["lr"], state["args"]["momentum"], state["args"]["weight_decay"]) == (0.05, 0.9, 0.001)
    first, second = metrics_of(out)
    assert "changed" not in first
    assert second["changed"] == {"lr": [0.01, 0.05], "momentum": [0.5, 0.9], "weight_decay": [0.0, 0.001]}


def test_resume_alone_continues_with_the_saved_settings(tmp_path, capsys):
    out = tmp_path / "run"
    assert tiny(out, "--epochs", "1", "--seed", "3") == 0
    assert train.main(["--out", str(out), "--resume", "--epochs", "2"]) == 0
    state = checkpoint_of(out)
    assert state["epoch"] == 2 and [m["epoch"] for m in state["metrics"]] == [1, 2]
    assert {k: state["args"][k] for k in ("seed", "train_samples", "batch_size", "impl")} == \
        {"seed": 3, "train_samples": 64, "batch_size": 16, "impl": "vector"}
    capsys.readouterr()
    assert train.main(["--out", str(out), "--resume"]) == 0
    assert "finished" in capsys.readouterr().out
    assert train.main(["--out", str(out), "--resume", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "argument --epochs" in err and "2 epochs" in err
    assert checkpoint_of(out)["epoch"] == 2


class Payload:
    """Unpickling this runs ``touch marker``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {shlex.quote(str(self.marker))}",)


def write_bad_checkpoint(path, kind: str) -> None:
    full = {"model": SimpleConvNet("torch").state_dict(), "optimizer": {}, "scheduler": {}, "epoch": 1,
            "rng": {"torch": torch.get_rng_state(), "cuda": []}, "metrics": [],
            "args": {"model": "simple", "dataset": "mnist", "impl": "vector"}}
    if kind == "truncated":
        torch.save(full, path)
        path.write_bytes(path.read_bytes()[:-1000])
    elif kind == "random":
        path.write_bytes(torch.randint(0, 256, (5000,), dtype=torch.uint8,
                                       generator=torch.Generator().manual_seed(0)).numpy().tobytes())
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "bare state_dict":
        torch.save(full["model"], path)
    elif kind == "missing keys":
        torch.save({k: v for k, v in full.items() if k not in ("args", "rng")}, path)
    elif kind == "malicious":
        torch.save({**full, "model": Payload(path.parent / "pwned")}, path)
    elif kind == "malicious legacy pickle":
        path.write_bytes(pickle.dumps({**full, "model": Payload(path.parent / "pwned")}))


BAD_CHECKPOINTS = {  # what the one line must say
    "truncated": r"truncated", "random": r"not the zip archive torch\.save writes", "empty": r"empty \(0 bytes\)",
    "bare state_dict": r"bare state_dict", "missing keys": r"lacks .*'args'",
    "malicious": r"refused.*posix\.system", "malicious legacy pickle": r"not the zip archive torch\.save writes",
}


@pytest.mark.parametrize("kind", BAD_CHECKPOINTS)
def test_bad_checkpoint_is_one_clear_line(tmp_path, capsys, kind):
    """train.py --resume and the report load checkpoints with the same loader: one line naming the file and
    what is wrong, exit 2, no traceback, never torch's advice to load with weights_only=False."""
    from simple_conv_net.report import main as report_main

    out = tmp_path / "run"
    out.mkdir()
    path = out / "checkpoint.pt"
    write_bad_checkpoint(path, kind)
    code = tiny(out, "--resume", "--epochs", "2")
    err = capsys.readouterr().err
    assert code == 2, err
    assert report_main(["--checkpoint", str(path)]) == 2
    report_err = capsys.readouterr().err
    for text in (err, report_err):
        lines = text.strip().splitlines()
        assert len(lines) == 1, text
        assert str(path) in lines[0] and re.search(BAD_CHECKPOINTS[kind], lines[0]), lines[0]
        assert "weights_only" not in text and "Traceback" not in text
    if kind == "missing keys":
        assert "'rng'" in err  # train.py needs the RNG states; the report does not
    assert not (out / "pwned").exists()


def test_second_process_on_the_same_run_directory_is_refused(tmp_path, capsys):
    """One train.py at a time writes a run directory; the lock of a killed one is taken over, and the
    temporary file an interrupted write left behind is removed."""
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-u", str(ROOT / "train.py"), *TINY, "--epochs", "100000",
                              "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:
        for line in first.stdout:  # once it has written a checkpoint (epoch 1's, before epoch 2 began)
            if line.startswith("epoch  2:"):
                break
        assert first.poll() is None, "the first run ended early"
        assert tiny(out, "--epochs", "1") == 2
        err = capsys.readouterr().err
        assert f"{out} is in use" in err and f"pid {first.pid}" in err
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
        first.stdout.close()
    leftover = out / ".checkpoint.pt.x1y2z3.tmp"
    leftover.write_bytes(bytes(1000))
    assert tiny(out, "--resume", "--epochs", str(checkpoint_of(out)["epoch"] + 1)) == 0
    assert not leftover.exists() and not list(out.glob(".*.tmp"))
    printed = capsys.readouterr().out
    assert f"pid {first.pid}" in printed and str(leftover.name) in printed


def test_a_write_interrupted_between_checkpoint_and_metrics_leaves_them_consistent(tmp_path, monkeypatch):
    """A kill between the two files an epoch writes: metrics.jsonl may lag the checkpoint, never lead it
    (the model would not have seen the epoch it shows), and resuming brings it up to date."""
    out = tmp_path / "run"
    renames, real_replace = [], os.replace

    def replace(source, target):
        if Path(target).parent == out:
            renames.append(Path(target).name)
            if len(renames) == 4:  # epoch 2's second file
                raise KeyboardInterrupt
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    assert tiny(out, "--epochs", "2") == 130
    monkeypatch.undo()
    assert max(m["epoch"] for m in metrics_of(out)) <= checkpoint_of(out)["epoch"]
    assert tiny(out, "--resume", "--epochs", "2") == 0
    assert [m["epoch"] for m in metrics_of(out)] == [m["epoch"] for m in checkpoint_of(out)["metrics"]] == [1, 2]


def test_ctrl_c_in_the_first_epoch_says_there_is_nothing_to_resume(tmp_path, monkeypatch, capsys):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "train_epoch", interrupted)
    assert tiny(tmp_path / "run", "--epochs", "2") == 130
    err = capsys.readouterr().err
    assert "nothing to resume" in err and "Continue with" not in err
    again = err.split("Start again with: ")[1]
    assert "--resume" not in again and "--epochs 2" in again


def test_a_new_run_does_not_overwrite_another_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert tiny(out, "--epochs", "1") == 0
    before = (out / "checkpoint.pt").read_bytes()
    assert tiny(out, "--epochs", "1", "--seed", "5") == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "checkpoint.pt").read_bytes() == before


def test_divergence_stops_with_the_step_and_saves_nothing_of_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert tiny(out, "--epochs", "2", "--lr", "1e4", "--save-model") == 1
    err = capsys.readouterr().err
    assert re.search(r"non-finite.*step \d+", err), err
    assert not (out / "checkpoint.pt").exists() and not (out / "model.pt").exists()


def test_off_a_terminal_progress_is_a_line_every_log_interval(tmp_path, capsys):
    assert tiny(tmp_path / "run", "--epochs", "1", "--log-interval", "2") == 0  # captured: stdout is no TTY
    printed = capsys.readouterr().out
    lines = re.findall(r"^epoch 1 \[\s*(\d+)/64 \(\s*(\d+)%\)\] loss \d+\.\d{4}, \d+ images/s$", printed, re.M)
    assert lines == [("32", "50"), ("64", "100")], printed


def test_help_names_the_default_run_directory_and_the_handouts(capsys):
    with pytest.raises(SystemExit):
        train.parse_args(["--help"])
    text = capsys.readouterr().out
    assert "runs/<model>-<impl>-<timestamp>" in text
    assert not re.search(r"seed \d{3}", text), "a handout cited by number only"
    default = train.parse_args(["--model", "lenet", "--impl", "scalar"]).out
    assert re.fullmatch(r"runs/lenet-scalar-\d{8}-\d{6}", default)

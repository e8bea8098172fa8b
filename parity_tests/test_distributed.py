"""Multi-process training: 2 CPU processes with gloo (torchrun) vs one process on the concatenated batches."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import assert_close
from simple_conv_net.model import SimpleConvNet

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--epochs", "1", "--train-samples", "96", "--test-samples", "50"]


def train(out, *args, processes=1):
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}"]
                if processes > 1 else [sys.executable])
    result = subprocess.run([*launcher, str(ROOT / "train.py"), *QUICK, "--out", str(out), *args],
                            capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    return torch.load(out / "checkpoint.pt", weights_only=True), result.stdout


@pytest.mark.parametrize("impl", ["torch", "vector", "scalar"])
def test_two_processes_equal_one_on_concatenated_batches(impl, tmp_path):
    """Each rank steps on batch 16 of its shard; DDP averages the gradients, which is one process's
    step on the 32 images of both shards: the weights agree to float32 rounding."""
    ddp, printed = train(tmp_path / "ddp", "--impl", impl, "--batch-size", "16", processes=2)
    single, _ = train(tmp_path / "single", "--impl", impl, "--batch-size", "32")
    assert printed.count("epoch  1:") == 1, "rank 0 alone prints"
    torch.manual_seed(1)  # train.py's default seed, set before it builds the model
    initial = SimpleConvNet("torch").state_dict()
    for name, weight in single["model"].items():
        assert not torch.equal(weight, initial[name]), f"{name} did not move: the check would be vacuous"
        assert_close(name, weight, ddp["model"][name])

"""Train SimpleConvNet (or LeNet, LeNet-5) on MNIST (or CIFAR-10) with any implementation of its layers.

    python train.py --impl vector            # or scalar, or torch (native PyTorch)
    python train.py --model lenet5 --dataset cifar10 --data-dir DIR

The homework's defaults (seed 000): batch 64, test batch 1000, SGD with lr 0.01 and
momentum 0.5, 20 epochs, seed 1; the flags of the PyTorch MNIST example. After each
epoch the test loss and accuracy and the epoch's seconds are appended to
DIR/metrics.jsonl and the whole state to DIR/checkpoint.pt (model, optimizer, epoch,
RNG states, metrics, arguments), each written to a temporary name and renamed, so an
interrupted run keeps its last complete epoch; ``--resume`` continues from there and
ends with the same weights as an uninterrupted run.

Several processes: ``torchrun --nproc-per-node 2 train.py --impl vector`` trains with
DistributedDataParallel (gloo on CPU, nccl on CUDA). Each rank takes a disjoint shard of
every epoch with --batch-size images per step, gradients are averaged across ranks, and
rank 0 alone evaluates, prints and writes metrics and checkpoints.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from simple_conv_net import data, datasets
from simple_conv_net.backends import IMPLS
from simple_conv_net.cli import positive_int
from simple_conv_net.io import CHECKPOINT, FINAL_MODEL, METRICS, atomic_torch_save, atomic_write_text
from simple_conv_net.model import MODELS, build_model
from simple_conv_net.optim import SGD, InverseDecay, weight_decay_groups


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train SimpleConvNet on MNIST with torch, vector or scalar ops")
    parser.add_argument("--impl", choices=IMPLS, default="vector",
                        help="layer implementation: native torch, vectorized, or scalar loops (default: vector)")
    parser.add_argument("--model", choices=list(MODELS), default="simple",
                        help="network: SimpleConvNet (seed 000), LeNet (seed 003) or LeNet-5 (seed 001) (default: simple)")
    parser.add_argument("--batch-norm", action="store_true",
                        help="LeNet-5 with batch normalisation after each conv and hidden FC layer")
    parser.add_argument("--dataset", choices=list(datasets.DATASETS), default="mnist",
                        help="mnist, or cifar10 (from --data-dir; see the README) (default: mnist)")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="N",
                        help="input batch size for training (default: 64)")
    parser.add_argument("--test-batch-size", type=positive_int, default=1000, metavar="N",
                        help="input batch size for testing (default: 1000)")
    parser.add_argument("--epochs", type=positive_int, default=20, metavar="N",
                        help="number of epochs to train (default: 20)")
    parser.add_argument("--lr", type=float, default=0.01, metavar="LR", help="learning rate (default: 0.01)")
    parser.add_argument("--momentum", type=float, default=0.5, metavar="M", help="SGD momentum (default: 0.5)")
    parser.add_argument("--optimizer", choices=["torch", "own"], default="torch",
                        help="torch.optim.SGD, or the SGD written from the handouts' equations (default: torch)")
    parser.add_argument("--weight-decay", type=float, default=0.0, metavar="L",
                        help="L2 weight decay lambda on the weights, not the biases (seed 003 eqs. 12-13; default: 0)")
    parser.add_argument("--lr-gamma", type=float, default=0.0, metavar="G",
                        help="learning-rate policy lr / (1 + G*t)^P per step t (seed 003 eq. 11; default: 0, constant)")
    parser.add_argument("--lr-power", type=float, default=0.0, metavar="P", help="P of --lr-gamma's policy (default: 0)")
    parser.add_argument("--momentum-form", choices=["handout", "moving_average"], default="handout",
                        help="--optimizer own: momentum as seed 003 eqs. 9-10, or seed 004's moving average (eqs. 17-18)")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default: 1)")
    parser.add_argument("--log-interval", type=positive_int, default=10, metavar="N",
                        help="batches between updates of the logged training loss (default: 10)")
    parser.add_argument("--save-model", action="store_true",
                        help=f"also save the final weights as DIR/{FINAL_MODEL} (a plain state_dict)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--data-dir", default=None, help="directory with the dataset's files")
    parser.add_argument("--download", action="store_true",
                        help="download MNIST into --data-dir (default ./data) if it is not found (MNIST only)")
    parser.add_argument("--train-samples", type=positive_int, default=None, metavar="N",
                        help="train on the first N training images only (quick runs)")
    parser.add_argument("--test-samples", type=positive_int, default=None, metavar="N",
                        help="test on the first N test images only")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="run directory for metrics and checkpoints (default: runs/<impl>-<timestamp>)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    args = parser.parse_args(argv)
    if args.resume and args.out is None:
        parser.error("argument --resume: expected --out DIR naming the run to continue")
    if args.download and args.dataset != "mnist":
        parser.error("argument --download: only MNIST can be downloaded; put CIFAR-10 in --data-dir (see the README)")
    if args.model == "simple" and args.dataset != "mnist":
        parser.error(f"argument --model: 'simple' is built for MNIST's 1x28x28 images; use --model lenet5 "
                     f"with --dataset {args.dataset}")
    if args.optimizer == "torch" and args.momentum_form != "handout":
        parser.error("argument --momentum-form: moving_average is a form of --optimizer own only")
    if args.batch_norm and args.model != "lenet5":
        parser.error(f"argument --batch-norm: an option of --model lenet5 only, got --model {args.model}")
    if args.out is None:
        args.out = str(Path("runs") / f"{args.model}-{args.impl}-{datetime.now():%Y%m%d-%H%M%S}")
    return args


def load_data(args):
    try:
        train = datasets.load(args.dataset, "train", args.data_dir)
    except data.MNISTNotFoundError:
        if not args.download:
            raise
        args.data_dir = str(data.download_mnist(args.data_dir or "data"))  # read back from where it went
        train = datasets.load(args.dataset, "train", args.data_dir)
    test = datasets.load(args.dataset, "test", args.data_dir)
    device = torch.device(args.device)
    train_batches = data.Batches(*(t.to(device) for t in train), args.batch_size, shuffle=True, seed=args.seed,
                                 limit=args.train_samples)
    test_batches = data.Batches(*(t.to(device) for t in test), args.test_batch_size, limit=args.test_samples)
    return train_batches, test_batches


class Ranks:
    """This process's place in a torchrun job (rank 0 of 1 when run on its own)."""

    def __init__(self, device: str):
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.device = device
        if self.world_size > 1:
            if torch.device(device).type == "cuda":
                local_rank = int(os.environ.get("LOCAL_RANK", "0"))
                self.device = f"cuda:{local_rank}"
                torch.cuda.set_device(local_rank)
            dist.init_process_group("nccl" if torch.device(self.device).type == "cuda" else "gloo")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        if self.world_size > 1:
            dist.all_reduce(tensor)
        return tensor

    def wait(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world_size > 1:
            dist.destroy_process_group()


def make_optimizer(model, args):
    """SGD as asked, weight decay on the weights only, and the eq. 11 learning-rate policy (a scheduler
    stepped once per batch; with --lr-gamma 0 it keeps the rate constant)."""
    groups = weight_decay_groups(model, args.weight_decay)
    if args.optimizer == "own":
        optimizer = SGD(groups, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay,
                        momentum_form=args.momentum_form)
    else:
        optimizer = torch.optim.SGD(groups, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    return optimizer, InverseDecay(optimizer, args.lr_gamma, args.lr_power)


def train_epoch(model, net, optimizer, scheduler, batches, epoch, args, ranks: Ranks) -> dict:
    """One epoch of SGD steps; ``net`` is the model or its DistributedDataParallel wrapper."""
    model.train()
    totals = torch.zeros(2, dtype=torch.float64, device=ranks.device)  # loss sum, images, over every rank
    seen = 0
    steps = batches.batches_per_rank(ranks.world_size)
    start = time.perf_counter()
    progress = tqdm(batches.epoch(epoch, ranks.rank, ranks.world_size), total=steps,
                    desc=f"epoch {epoch}/{args.epochs}", unit="batch", leave=False,
                    disable=None if ranks.main else True)
    for step, (images, labels) in enumerate(progress, start=1):
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(net(images), labels)
        loss.backward()
        optimizer.step()
        scheduler.step()
        totals[0] += loss.detach() * len(labels)
        seen += len(labels)
        if step % args.log_interval == 0 or step == steps:  # the only host syncs of the loop
            rate = seen * ranks.world_size / (time.perf_counter() - start)
            progress.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{rate:.0f}")
    seconds = time.perf_counter() - start
    totals[1] = seen
    loss_sum, images = ranks.sum(totals).tolist()
    return {"train_loss": loss_sum / images, "seconds": seconds, "images_per_second": images / seconds}


@torch.no_grad()
def evaluate(model, batches) -> dict:
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = 0
    for images, labels in batches.epoch(0):
        log_probs = model(images)
        loss_sum += model.loss(log_probs, labels, reduction="sum").double().cpu()
        correct += int((log_probs.argmax(dim=1) == labels).sum())
    return {"test_loss": loss_sum.item() / batches.num_samples, "test_accuracy": correct / batches.num_samples}


def save_checkpoint(path: Path, model, optimizer, scheduler, epoch: int, metrics: list, args) -> None:
    state = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        "metrics": metrics, "args": vars(args),
    }
    atomic_torch_save(state, path)


# What a resumed run must share with the run it continues, for the same weights as one uninterrupted run.
SAME_RUN = ("model", "batch_norm", "dataset", "batch_size", "seed", "train_samples", "optimizer", "momentum_form")


def load_run(out: Path, args) -> dict:
    """The checkpoint in ``out``, on the CPU (RNG states must stay there; load_state_dict moves the
    rest), after checking that ``args`` continue the same run."""
    path = out / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"argument --resume: expected a checkpoint at {path}, found none "
                                f"(is --out the directory of the run to continue?)")
    state = torch.load(path, weights_only=True, map_location="cpu")
    for name in SAME_RUN:
        saved, given = state["args"].get(name), getattr(args, name)
        if saved != given:
            raise ValueError(f"argument --{name.replace('_', '-')}: the run in {out} used {saved!r}, got {given!r}; "
                             f"a resumed run must use the same value")
    return state


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    out = Path(args.out)
    ranks = Ranks(args.device)  # first: under torchrun it picks this rank's GPU, where its data goes too
    args.device = ranks.device
    try:
        train_batches, test_batches = load_data(args)
    except (FileNotFoundError, ValueError, OSError) as error:  # missing, corrupt or undownloadable data
        say(ranks, f"error: {error}", file=sys.stderr)
        return 2
    if train_batches.num_samples < ranks.world_size:
        say(ranks, f"error: argument --train-samples: expected at least one image per process "
                   f"({ranks.world_size}), got {train_batches.num_samples}", file=sys.stderr)
        return 2

    torch.manual_seed(args.seed)
    dataset = datasets.get_dataset(args.dataset)
    model = build_model(args.model, args.impl, dataset.input_shape, dataset.num_classes,
                        batch_norm=args.batch_norm).to(args.device)
    net = model
    if ranks.world_size > 1:
        net = DistributedDataParallel(model, device_ids=[args.device] if args.device.startswith("cuda") else None)
    optimizer, scheduler = make_optimizer(model, args)
    metrics, first_epoch = [], 1
    if args.resume:
        try:
            state = load_run(out, args)
        except (FileNotFoundError, ValueError) as error:
            say(ranks, f"error: {error}", file=sys.stderr)
            return 2
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        metrics, first_epoch = state["metrics"], state["epoch"] + 1
        say(ranks, f"resuming {out} after epoch {state['epoch']}")

    processes = f", {ranks.world_size} processes" if ranks.world_size > 1 else ""
    say(ranks, f"training {type(model).__name__}, impl {args.impl}, on {train_batches.num_samples} {args.dataset} "
               f"images ({args.device}{processes}), testing on {test_batches.num_samples}; run directory {out}")
    try:
        for epoch in range(first_epoch, args.epochs + 1):
            record = {"epoch": epoch, "impl": args.impl,
                      **train_epoch(model, net, optimizer, scheduler, train_batches, epoch, args, ranks)}
            if ranks.main:
                record.update(evaluate(model, test_batches))
                metrics.append(record)
                print(f"epoch {epoch:2d}: train loss {record['train_loss']:.4f}, test loss {record['test_loss']:.4f}, "
                      f"accuracy {100 * record['test_accuracy']:.2f}%, {record['seconds']:.1f} s "
                      f"({record['images_per_second']:.0f} images/s)")
                atomic_write_text(out / METRICS, "".join(json.dumps(m) + "\n" for m in metrics))
                save_checkpoint(out / CHECKPOINT, model, optimizer, scheduler, epoch, metrics, args)
            ranks.wait()
    except KeyboardInterrupt:
        done = metrics[-1]["epoch"] if metrics else 0
        again = [a for a in argv if a != "--resume"] + (["--out", str(out)] if "--out" not in argv else []) + ["--resume"]
        say(ranks, f"\ninterrupted; {out / CHECKPOINT} holds epoch {done}. Continue with: "
                   f"python train.py {shlex.join(again)}", file=sys.stderr)
        return 130
    if args.save_model and ranks.main:
        atomic_torch_save(model.state_dict(), out / FINAL_MODEL)
    ranks.close()
    return 0


def say(ranks: Ranks, message: str, file=None) -> None:
    """Print on rank 0 only, so a multi-process run prints each line once."""
    if ranks.main:
        print(message, file=file or sys.stdout)


if __name__ == "__main__":
    sys.exit(main())

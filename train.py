"""Train SimpleConvNet (or LeNet, LeNet-5) on MNIST (or CIFAR-10) with any implementation of its layers.

    python train.py --impl vector            # or scalar, or torch (native PyTorch)
    python train.py --model lenet5 --dataset cifar10 --data-dir DIR
    python train.py --resume --out DIR       # continue a run, with its saved settings
    python train.py --impl scalar --compile  # torch.compile the model (see simple_conv_net/compiled.py)

The homework's defaults (seed 000): batch 64, test batch 1000, SGD with lr 0.01 and
momentum 0.5, 20 epochs, seed 1; the flags of the PyTorch MNIST example. After each
epoch the whole state goes to DIR/checkpoint.pt (model, optimizer, epoch, RNG states,
metrics, arguments), then a copy of the metrics (test loss and accuracy, seconds) to
DIR/metrics.jsonl, each written to a temporary name and renamed, so an interrupted run
keeps its last complete epoch; ``--resume`` continues from there and ends with the same
weights as an uninterrupted run. One train.py at a time writes a run directory (it holds
its lock; see simple_conv_net/run_dir.py). A loss that turns nan or inf stops the run,
keeping the last good checkpoint.

Several processes: ``torchrun --nproc-per-node 2 train.py --impl vector`` trains with
DistributedDataParallel (gloo on CPU, nccl on CUDA). Each rank takes a disjoint shard of
every epoch with --batch-size images per step, gradients are averaged across ranks, and
rank 0 alone evaluates, prints, holds the lock and writes metrics and checkpoints.
"""

from __future__ import annotations

import argparse
import math
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
from simple_conv_net.compiled import Compiled, compile_cost
from simple_conv_net.io import CHECKPOINT, FINAL_MODEL, atomic_torch_save
from simple_conv_net.model import MODELS, build_model
from simple_conv_net.optim import SGD, InverseDecay, weight_decay_groups
from simple_conv_net.run_dir import (CHECKPOINT_KEYS, CheckpointError, RunDirectoryInUse, RunLock, load_checkpoint,
                                     save_epoch, write_metrics)


class Refused(Exception):
    """Bad arguments or data, or a run that cannot go on as asked: the message says which (exit 2)."""


HANDOUTS = ("The course handouts named here (the code cites them by number): the homework (000), the SimpleConvNet "
            "homework of UCU's deep learning class; the LeNet-5 homework (001), COM S 573 homework 5; the CMU "
            "homework (003), CMU 10-601 homework 7 (LeNet, backprop, SGD); the Lund assignment (004), FMAN45 "
            "assignment 3 (CNNs, SGD, visualisation).")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Train SimpleConvNet on MNIST with torch, vector or scalar ops",
                                     epilog=HANDOUTS)
    parser.add_argument("--impl", choices=IMPLS, default="vector",
                        help="layer implementation: native torch, vectorized, or scalar loops (default: vector)")
    parser.add_argument("--model", choices=list(MODELS), default="simple",
                        help="network: SimpleConvNet (the homework), LeNet (the CMU homework) or LeNet-5 "
                             "(the LeNet-5 homework) (default: simple)")
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
                        help="L2 weight decay lambda on the weights, not the biases (the CMU homework's "
                             "eqs. 12-13; default: 0)")
    parser.add_argument("--lr-gamma", type=float, default=0.0, metavar="G",
                        help="learning-rate policy lr / (1 + G*t)^P per step t (the CMU homework's eq. 11; "
                             "default: 0, constant)")
    parser.add_argument("--lr-power", type=float, default=0.0, metavar="P", help="P of --lr-gamma's policy (default: 0)")
    parser.add_argument("--momentum-form", choices=["handout", "moving_average"], default="handout",
                        help="--optimizer own: momentum as the CMU homework's eqs. 9-10, or the moving "
                             "average of the Lund assignment's eqs. 17-18")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default: 1)")
    parser.add_argument("--log-interval", type=positive_int, default=10, metavar="N",
                        help="batches between reports of the training loss: on the progress bar, or off a "
                             "terminal a printed line (default: 10)")
    parser.add_argument("--save-model", action="store_true",
                        help=f"also save the final weights as DIR/{FINAL_MODEL} (a plain state_dict)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--data-dir", default=None, help="directory with the dataset's files")
    parser.add_argument("--download", action="store_true",
                        help="download MNIST into --data-dir (default ./data) if it is not found (MNIST only)")
    parser.add_argument("--no-md5-check", action="store_true",
                        help="MNIST: load files with the standard names whose MD5 is not the real files' "
                             "(data of your own under those names)")
    parser.add_argument("--train-samples", type=positive_int, default=None, metavar="N",
                        help="train on the first N training images only (quick runs)")
    parser.add_argument("--test-samples", type=positive_int, default=None, metavar="N",
                        help="test on the first N test images only")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="run directory for metrics and checkpoints (default: runs/<model>-<impl>-<timestamp>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in --out from its checkpoint, with its saved settings for every "
                             "flag not given")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the model, whole (fullgraph), for training and testing, the batch "
                             "size dynamic; the first batches pay the compilation (its time is printed)")
    return parser


# Flags a resumed run does not take from its checkpoint: where and how it runs is chosen anew.
CHOSEN_ANEW = ("device", "out", "resume", "compile")


def parse_args(argv=None, saved: dict | None = None) -> argparse.Namespace:
    """The command line, checked.

    ``saved``: the arguments of the run that --resume continues (from its checkpoint). Every flag the
    command line does not give takes its saved value (but :data:`CHOSEN_ANEW`), so ``--resume --out DIR``
    alone continues the run as it was, and the checks between flags run on the result. Without
    ``saved`` a --resume command line is checked for --out only: main parses it again with them.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if args.resume and args.out is None:
        parser.error("argument --resume: expected --out DIR naming the run to continue")
    if args.resume and saved is None:
        return args
    if saved is not None:
        given = given_flags(parser, argv, args)
        for name, value in saved.items():
            if hasattr(args, name) and name not in given and name not in CHOSEN_ANEW:
                setattr(args, name, value)
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


def given_flags(parser: argparse.ArgumentParser, argv: list, args: argparse.Namespace) -> set:
    """The names of the arguments ``argv`` gives. argparse fills in a default only where the namespace
    has no value yet, so parsing into a namespace of markers shows which ones the command line set."""
    unset = object()
    probe = parser.parse_args(argv, argparse.Namespace(**dict.fromkeys(vars(args), unset)))
    return {name for name, value in vars(probe).items() if value is not unset}


def load_data(args):
    try:
        train = datasets.load(args.dataset, "train", args.data_dir, check_md5=not args.no_md5_check)
    except data.MNISTNotFoundError:
        if not args.download:
            raise
        args.data_dir = str(data.download_mnist(args.data_dir or "data"))  # read back from where it went
        train = datasets.load(args.dataset, "train", args.data_dir, check_md5=not args.no_md5_check)
    test = datasets.load(args.dataset, "test", args.data_dir, check_md5=not args.no_md5_check)
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

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (every rank must ask, so that all take the same branch)."""
        return bool(self.sum(torch.tensor([float(flag)], device=self.device)).item()) if self.world_size > 1 else flag

    def wait(self) -> None:
        if self.world_size > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
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


# What a resumed run must share with the run it continues, for the same weights as one uninterrupted run.
SAME_RUN = ("model", "batch_norm", "dataset", "batch_size", "seed", "train_samples", "optimizer", "momentum_form")
# What a resumed run may change: the optimizer's settings, given to it after its saved state is loaded.
CHANGEABLE = ("lr", "momentum", "weight_decay", "lr_gamma", "lr_power")


def resume_changes(saved: dict, args, out: Path) -> dict:
    """``{name: [saved, new]}`` of the settings --resume changes; raises :class:`Refused` for one it may not."""
    for name in SAME_RUN:
        if name in saved and saved[name] != getattr(args, name):
            raise Refused(f"argument --{name.replace('_', '-')}: the run in {out} used {saved[name]!r}, got "
                          f"{getattr(args, name)!r}; a resumed run must use the same value")
    return {name: [saved[name], getattr(args, name)] for name in CHANGEABLE
            if name in saved and saved[name] != getattr(args, name)}


def restore(state: dict, path: Path, model, optimizer, scheduler, args) -> None:
    """Load a checkpoint's model, optimizer, policy and RNG states, then give the optimizer the settings of
    ``args``: the saved state brings the saved ones, and a resumed run given new values runs with them."""
    try:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
    except (RuntimeError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(f"{path} does not fit the model and optimizer of its own arguments: "
                              f"{(str(error).strip().splitlines() or [''])[0][:200]}") from None
    if state["rng"].get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    for group, fresh in zip(optimizer.param_groups, weight_decay_groups(model, args.weight_decay)):
        group["momentum"], group["weight_decay"] = args.momentum, fresh["weight_decay"]
    scheduler.set_policy(args.lr, args.lr_gamma, args.lr_power)


class Diverged(ArithmeticError):
    """The training loss became nan or inf."""


class Progress:
    """What an epoch shows while it runs, at every --log-interval'th batch: on a terminal a tqdm bar with
    the loss and images/s; off one (a log file, a pipe), where a bar shows nothing, a plain line like
    the PyTorch MNIST example's. Rank 0 alone shows anything."""

    def __init__(self, batches, epoch: int, args, ranks: Ranks):
        self.epoch, self.world_size = epoch, ranks.world_size
        self.total = batches.num_samples // ranks.world_size * ranks.world_size  # what the shards cover
        self.lines = ranks.main and not sys.stdout.isatty()
        self.bar = tqdm(total=batches.batches_per_rank(ranks.world_size), desc=f"epoch {epoch}/{args.epochs}",
                        unit="batch", leave=False, disable=None if ranks.main and not self.lines else True)
        self.start = time.perf_counter()

    def step(self) -> None:
        self.bar.update()

    def show(self, seen: int, loss: float) -> None:
        """``seen``: images this rank has trained on so far this epoch; ``loss``: the last batch's."""
        images = seen * self.world_size
        rate = images / (time.perf_counter() - self.start)
        if self.lines:
            width = len(str(self.total))
            print(f"epoch {self.epoch} [{images:{width}d}/{self.total} ({100 * images / self.total:3.0f}%)] "
                  f"loss {loss:.4f}, {rate:.0f} images/s", flush=True)
        else:
            self.bar.set_postfix(loss=f"{loss:.4f}", img_s=f"{rate:.0f}")

    def close(self) -> None:
        self.bar.close()


def train_epoch(model, net, optimizer, scheduler, batches, epoch, args, ranks: Ranks) -> dict:
    """One epoch of SGD steps; ``net`` is the model or its DistributedDataParallel wrapper, or that
    compiled (the loss and the optimizer step run eagerly either way). Raises
    :class:`Diverged` when a loss is not finite, found at the log syncs: each step's loss waits on the
    device in ``recent`` until then, so the error names the very step at no cost of its own."""
    model.train()
    totals = torch.zeros(2, dtype=torch.float64, device=ranks.device)  # loss sum, images, over every rank
    recent = torch.zeros(args.log_interval, dtype=torch.float64, device=ranks.device)  # the losses since a sync
    seen = 0
    steps = batches.batches_per_rank(ranks.world_size)
    progress = Progress(batches, epoch, args, ranks)
    try:
        for step, (images, labels) in enumerate(batches.epoch(epoch, ranks.rank, ranks.world_size), start=1):
            optimizer.zero_grad(set_to_none=True)
            loss = model.loss(net(images), labels)
            loss.backward()
            optimizer.step()
            scheduler.step()
            totals[0] += loss.detach() * len(labels)
            recent[(step - 1) % args.log_interval] = loss.detach()
            seen += len(labels)
            progress.step()
            if step % args.log_interval == 0 or step == steps:  # the only host syncs of the loop
                losses = recent[: (step - 1) % args.log_interval + 1].tolist()
                check_finite(losses, step, steps, epoch, ranks)
                progress.show(seen, losses[-1])
    finally:
        progress.close()
    seconds = time.perf_counter() - progress.start
    totals[1] = seen
    loss_sum, images = ranks.sum(totals).tolist()
    return {"train_loss": loss_sum / images, "seconds": seconds, "images_per_second": images / seconds}


def check_finite(losses: list, step: int, steps: int, epoch: int, ranks: Ranks) -> None:
    """Raise :class:`Diverged` if a loss of the batches up to ``step`` is nan or inf, on any rank."""
    bad = next((k for k, value in enumerate(losses) if not math.isfinite(value)), None)
    if not ranks.any(bad is not None):
        return
    if bad is None:
        raise Diverged(f"another process's training loss became non-finite by batch {step} of epoch {epoch}")
    batch = step - len(losses) + 1 + bad
    raise Diverged(f"the training loss became non-finite ({losses[bad]}) at step {(epoch - 1) * steps + batch} "
                   f"(epoch {epoch}, batch {batch} of {steps})")


@torch.no_grad()
def evaluate(model, batches, forward=None) -> dict:
    """Test loss and accuracy of ``model``, whose forward ``forward`` runs (default: the model itself;
    with --compile, its compiled forward)."""
    model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64)
    correct = 0
    for images, labels in batches.epoch(0):
        log_probs = (forward or model)(images)
        loss_sum += model.loss(log_probs, labels, reduction="sum").double().cpu()
        correct += int((log_probs.argmax(dim=1) == labels).sum())
    return {"test_loss": loss_sum.item() / batches.num_samples, "test_accuracy": correct / batches.num_samples}


def checkpoint_state(model, optimizer, scheduler, epoch: int, metrics: list, args) -> dict:
    return {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "epoch": epoch,
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        "metrics": metrics, "args": vars(args),
    }


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    ranks = Ranks(args.device)  # first: under torchrun it picks this rank's GPU, where its data goes too
    args.device = ranks.device
    lock = RunLock(args.out)
    try:
        if args.resume and not (Path(args.out) / CHECKPOINT).is_file():
            raise Refused(f"argument --resume: expected a checkpoint at {Path(args.out) / CHECKPOINT}, found none "
                          f"(is --out the directory of the run to continue?)")
        hold(lock, ranks)
        return run(argv, args, ranks)
    except (Refused, RunDirectoryInUse, CheckpointError) as error:
        say(ranks, f"error: {error}", file=sys.stderr)
        return 2
    finally:
        if ranks.main:
            lock.release()
        ranks.close()


def hold(lock: RunLock, ranks: Ranks) -> None:
    """Rank 0 takes the run directory's lock, the one writer; every rank learns whether it did."""
    notes, refused = [], None
    if ranks.main:
        try:
            notes = lock.acquire()
        except RunDirectoryInUse as error:
            refused = error
        except OSError as error:  # a directory that cannot be made or written
            refused = Refused(f"argument --out: cannot write the run directory {lock.directory}: {error}")
    if ranks.any(refused is not None):
        raise refused or RunDirectoryInUse(f"{lock.directory} is in use (rank 0 could not lock it)")
    for note in notes:
        say(ranks, note)


def settle(argv: list, args, ranks: Ranks) -> tuple:
    """``(args, state, changes)`` of the run, with its directory held. A new run: the arguments as given,
    in a directory with no other run's checkpoint. --resume: the arguments with the checkpoint's saved
    ones as defaults, its state, and ``{name: [saved, new]}`` of the optimizer settings that change."""
    out = Path(args.out)
    if not args.resume:
        if (out / CHECKPOINT).exists():
            raise Refused(f"argument --out: {out} holds the checkpoint of another run; continue it with --resume, "
                          f"or choose another --out")
        return args, None, {}
    state = load_checkpoint(out / CHECKPOINT, needs=tuple(CHECKPOINT_KEYS))  # held: it cannot change now
    args = parse_args(argv, saved=state["args"])
    args.device = ranks.device
    changes = resume_changes(state["args"], args, out)
    if args.epochs < state["epoch"]:
        raise Refused(f"argument --epochs: the run in {out} has done {state['epoch']} epochs already; to continue "
                      f"it, expected more than {state['epoch']}, got {args.epochs}")
    if ranks.main:
        write_metrics(out, state["metrics"])  # the copy a kill may have left one epoch behind
    return args, state, changes


def run(argv: list, args, ranks: Ranks) -> int:
    """Train, with the run directory held; returns the exit code."""
    args, state, changes = settle(argv, args, ranks)
    out, done = Path(args.out), state["epoch"] if state else 0
    if done == args.epochs:
        say(ranks, f"the run in {out} is finished: epoch {done} of {args.epochs}; to train it further, "
                   f"pass --epochs N with N > {done}")
        return 0
    try:
        train_batches, test_batches = load_data(args)
    except (FileNotFoundError, ValueError, OSError) as error:  # missing, corrupt or undownloadable data
        raise Refused(str(error)) from None
    if train_batches.num_samples < ranks.world_size:
        raise Refused(f"argument --train-samples: expected at least one image per process ({ranks.world_size}), "
                      f"got {train_batches.num_samples}")

    torch.manual_seed(args.seed)
    dataset = datasets.get_dataset(args.dataset)
    model = build_model(args.model, args.impl, dataset.input_shape, dataset.num_classes,
                        batch_norm=args.batch_norm).to(args.device)
    net = evaluator = model
    if ranks.world_size > 1:
        net = DistributedDataParallel(model, device_ids=[args.device] if args.device.startswith("cuda") else None)
    if args.compile:
        net, evaluator = Compiled(net, fullgraph=net is model), Compiled(model)
        compiled_from = compile_cost()
    try:
        optimizer, scheduler = make_optimizer(model, args)
    except ValueError as error:  # a learning rate, momentum or weight decay out of range
        raise Refused(f"error in the optimizer's settings: {error}") from None
    metrics, first = [], done + 1
    if state is not None:
        restore(state, out / CHECKPOINT, model, optimizer, scheduler, args)
        metrics = state["metrics"]
        changed = "".join(f", --{name.replace('_', '-')} {new} (was {old})" for name, (old, new) in changes.items())
        say(ranks, f"resuming {out} after epoch {done}{changed}")

    processes = f", {ranks.world_size} processes" if ranks.world_size > 1 else ""
    say(ranks, f"training {type(model).__name__}, impl {args.impl}, on {train_batches.num_samples} {args.dataset} "
               f"images ({args.device}{processes}), testing on {test_batches.num_samples}; run directory {out}")
    try:
        for epoch in range(first, args.epochs + 1):
            record = {"epoch": epoch, "impl": args.impl,
                      **train_epoch(model, net, optimizer, scheduler, train_batches, epoch, args, ranks)}
            if ranks.main:
                record.update(evaluate(model, test_batches, evaluator))
                if changes and epoch == first:
                    record["changed"] = changes
                metrics.append(record)
                print(f"epoch {epoch:2d}: train loss {record['train_loss']:.4f}, test loss {record['test_loss']:.4f}, "
                      f"accuracy {100 * record['test_accuracy']:.2f}%, {record['seconds']:.1f} s "
                      f"({record['images_per_second']:.0f} images/s)")
                if args.compile:
                    graphs, seconds = compile_cost() - compiled_from
                    print(f"torch.compile: {graphs} graphs compiled so far (training, testing), {seconds:.1f} s "
                          f"compiling, in the epochs' seconds")
                save_epoch(out, checkpoint_state(model, optimizer, scheduler, epoch, metrics, args))
            done = epoch
            ranks.wait()
    except KeyboardInterrupt:
        again = [a for a in argv if a != "--resume"] + (["--out", str(out)] if "--out" not in argv else [])
        if done == 0:
            say(ranks, f"\ninterrupted during epoch 1, before any checkpoint was written: there is nothing to "
                       f"resume. Start again with: python train.py {shlex.join(again)}", file=sys.stderr)
        else:
            say(ranks, f"\ninterrupted; {out / CHECKPOINT} holds epoch {done}. Continue with: "
                       f"python train.py {shlex.join(again + ['--resume'])}", file=sys.stderr)
        return 130
    except Diverged as error:
        kept = (f"{out / CHECKPOINT} keeps epoch {done}, the last good one" if done else
                "no epoch was complete, so nothing was saved")
        say(ranks, f"error: training diverged: {error}; stopped: {kept}. Try a smaller --lr or a larger "
                   f"--batch-size.", file=sys.stderr)
        return 1
    if args.save_model and ranks.main:
        atomic_torch_save(model.state_dict(), out / FINAL_MODEL)
    return 0


def say(ranks: Ranks, message: str, file=None) -> None:
    """Print on rank 0 only, so a multi-process run prints each line once."""
    if ranks.main:
        print(message, file=file or sys.stdout)


if __name__ == "__main__":
    sys.exit(main())

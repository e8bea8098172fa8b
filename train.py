"""Train SimpleConvNet on MNIST with any implementation of its layers.

    python train.py --impl vector            # or scalar, or torch (native PyTorch)

The homework's defaults (seed 000): batch 64, test batch 1000, SGD with lr 0.01 and
momentum 0.5, 20 epochs, seed 1; the flags of the PyTorch MNIST example. After each
epoch the test loss and accuracy and the epoch's seconds are appended to
DIR/metrics.jsonl and the whole state to DIR/checkpoint.pt (model, optimizer, epoch,
RNG states, metrics, arguments), each written to a temporary name and renamed, so an
interrupted run keeps its last complete epoch; ``--resume`` continues from there and
ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime
from pathlib import Path

import torch
from tqdm import tqdm

from simple_conv_net import data
from simple_conv_net.backends import IMPLS
from simple_conv_net.io import atomic_torch_save, atomic_write_text
from simple_conv_net.model import SimpleConvNet

CHECKPOINT, METRICS, FINAL_MODEL = "checkpoint.pt", "metrics.jsonl", "simple_conv_net.pt"


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train SimpleConvNet on MNIST with torch, vector or scalar ops")
    parser.add_argument("--impl", choices=IMPLS, default="vector",
                        help="layer implementation: native torch, vectorized, or scalar loops (default: vector)")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="N",
                        help="input batch size for training (default: 64)")
    parser.add_argument("--test-batch-size", type=positive_int, default=1000, metavar="N",
                        help="input batch size for testing (default: 1000)")
    parser.add_argument("--epochs", type=positive_int, default=20, metavar="N",
                        help="number of epochs to train (default: 20)")
    parser.add_argument("--lr", type=float, default=0.01, metavar="LR", help="learning rate (default: 0.01)")
    parser.add_argument("--momentum", type=float, default=0.5, metavar="M", help="SGD momentum (default: 0.5)")
    parser.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default: 1)")
    parser.add_argument("--log-interval", type=positive_int, default=10, metavar="N",
                        help="batches between updates of the logged training loss (default: 10)")
    parser.add_argument("--save-model", action="store_true",
                        help=f"also save the final weights as DIR/{FINAL_MODEL} (a plain state_dict)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--data-dir", default=None, help="directory with the four MNIST IDX files")
    parser.add_argument("--download", action="store_true",
                        help="download MNIST into --data-dir (default ./data) if it is not found")
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
    if args.out is None:
        args.out = str(Path("runs") / f"{args.impl}-{datetime.now():%Y%m%d-%H%M%S}")
    return args


def load_data(args):
    try:
        train = data.load_mnist("train", args.data_dir)
    except data.MNISTNotFoundError:
        if not args.download:
            raise
        data.download_mnist(args.data_dir or "data")
        train = data.load_mnist("train", args.data_dir)
    test = data.load_mnist("test", args.data_dir)
    device = torch.device(args.device)
    train_batches = data.Batches(*(t.to(device) for t in train), args.batch_size, shuffle=True, seed=args.seed,
                                 limit=args.train_samples)
    test_batches = data.Batches(*(t.to(device) for t in test), args.test_batch_size, limit=args.test_samples)
    return train_batches, test_batches


def train_epoch(model, optimizer, batches, epoch, args) -> dict:
    model.train()
    total_loss = torch.zeros((), device=args.device)
    seen = 0
    start = time.perf_counter()
    progress = tqdm(batches.epoch(epoch), total=len(batches), desc=f"epoch {epoch}/{args.epochs}",
                    unit="batch", leave=False, disable=None)
    for step, (images, labels) in enumerate(progress, start=1):
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(model(images), labels)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach() * len(labels)
        seen += len(labels)
        if step % args.log_interval == 0 or step == len(batches):  # the only host syncs of the loop
            progress.set_postfix(loss=f"{loss.item():.4f}", img_s=f"{seen / (time.perf_counter() - start):.0f}")
    seconds = time.perf_counter() - start
    return {"train_loss": total_loss.item() / seen, "seconds": seconds, "images_per_second": seen / seconds}


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


def save_checkpoint(path: Path, model, optimizer, epoch: int, metrics: list, args) -> None:
    state = {
        "model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
        "rng": {"torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []},
        "metrics": metrics, "args": vars(args),
    }
    atomic_torch_save(state, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.out)
    try:
        train_batches, test_batches = load_data(args)
    except (data.MNISTNotFoundError, data.MNISTFormatError, data.MNISTDownloadError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    torch.manual_seed(args.seed)
    model = SimpleConvNet(args.impl).to(args.device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    metrics, first_epoch = [], 1
    if args.resume:
        state = torch.load(out / CHECKPOINT, weights_only=True, map_location=args.device)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["rng"]["torch"])
        if state["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        metrics, first_epoch = state["metrics"], state["epoch"] + 1
        print(f"resuming {out} after epoch {state['epoch']}")

    print(f"training SimpleConvNet, impl {args.impl}, on {train_batches.num_samples} images "
          f"({args.device}), testing on {test_batches.num_samples}; run directory {out}")
    try:
        for epoch in range(first_epoch, args.epochs + 1):
            record = {"epoch": epoch, "impl": args.impl, **train_epoch(model, optimizer, train_batches, epoch, args),
                      **evaluate(model, test_batches)}
            metrics.append(record)
            print(f"epoch {epoch:2d}: train loss {record['train_loss']:.4f}, test loss {record['test_loss']:.4f}, "
                  f"accuracy {100 * record['test_accuracy']:.2f}%, {record['seconds']:.1f} s "
                  f"({record['images_per_second']:.0f} images/s)")
            atomic_write_text(out / METRICS, "".join(json.dumps(m) + "\n" for m in metrics))
            save_checkpoint(out / CHECKPOINT, model, optimizer, epoch, metrics, args)
    except KeyboardInterrupt:
        done = metrics[-1]["epoch"] if metrics else 0
        print(f"\ninterrupted; {out / CHECKPOINT} holds epoch {done}. Continue with: "
              f"python train.py --impl {args.impl} --out {out} --resume", file=sys.stderr)
        return 130
    if args.save_model:
        atomic_torch_save(model.state_dict(), out / FINAL_MODEL)
    return 0


if __name__ == "__main__":
    sys.exit(main())

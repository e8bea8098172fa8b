"""How long does a training step take with each implementation, on every model and batch size?

    python benchmarks/epoch_timing.py                          # SimpleConvNet, batch 64: torch, vector, scalar
    python benchmarks/epoch_timing.py --model simple lenet lenet5 --batch-norm --batch-size 1 16 64 256 512 \\
        --plot docs/cost_growth.png --json runs/matrix.json
    python benchmarks/epoch_timing.py --full-epoch --repeats 1   # each round is one whole 60,000-image epoch
    python benchmarks/epoch_timing.py --compile                # and each impl under torch.compile beside it

For every (model, batch size) point, every impl is built from the same initial weights and
trained on the same real MNIST batches, all in one process, in interleaved rounds whose order
rotates, so machine noise hits the impls alike; the ratio of each impl's median step to native
torch's is the figure the targets are set on. The output: a table of every point (ms/step
min/median/max, images/s, epoch seconds, x torch, x of the FLOP bound), the homework's answer
(one epoch of SimpleConvNet), the ratio matrix against the targets, the cost growth (ms per
image against batch size; ``--plot FILE`` draws it), warm-up, inference at batch 1000, peak
memory, the FLOP bound and the per-layer profile of every point; ``--json FILE`` writes every
number with the machine's details.

The parts live in ``benchmarks/timing/``, one module each: ``core`` (the timing core: clocks and
interleaved rounds, used by every part), ``machine``, ``measure`` (one point), ``flops``,
``layers`` (the per-layer profile), ``memory``, ``matrix`` (all the points), ``output`` and
``plot``; each module's docstring describes its method.

Threads: ``--threads T`` calls torch.set_num_threads(T) (and numba.set_num_threads when the
scalar ops are loaded); the JSON records the thread counts actually in force.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere: the packages live in the repository
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from benchmarks.timing import matrix, memory, output, plot  # noqa: E402
from benchmarks.timing.matrix import SCHEMA  # noqa: E402,F401 - the JSON's schema, for its readers
from simple_conv_net.backends import IMPLS  # noqa: E402
from simple_conv_net.cli import positive_float, positive_int  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time training and inference with each ops implementation on every (model, batch size) point "
        "(ms/step, ratios to native torch, cost growth, per-layer times, memory).")
    parser.add_argument("--model", nargs="+", choices=["simple", "lenet", "lenet5"], default=["simple"],
                        help="models to time (default: simple); LeNet-5 at its CIFAR-10 shape 3x32x32")
    parser.add_argument("--batch-norm", action="store_true",
                        help="also time LeNet-5 with batch norm (lenet5-bn; needs --model lenet5)")
    parser.add_argument("--batch-size", nargs="+", type=positive_int, default=[64],
                        help="training batch sizes (default: 64)")
    parser.add_argument("--impl", nargs="+", choices=IMPLS, default=None,
                        help="implementations to time (default: all three; scalar is skipped with a message "
                        "if scalar_ops cannot be imported)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device, cpu or cuda (default: cuda when available, else cpu)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--budget", type=positive_float, default=0.5, metavar="SECONDS",
                        help="length of a round's block per impl: as many steps as the slowest impl's warm-up "
                        "steps fit in SECONDS (default: 0.5)")
    length.add_argument("--steps", type=positive_int, default=None,
                        help="a fixed number of training steps per impl per round instead of --budget")
    length.add_argument("--full-epoch", action="store_true",
                        help="each round trains every impl for one whole epoch (60,000 images)")
    parser.add_argument("--repeats", type=positive_int, default=5, help="interleaved rounds per point (default: 5)")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="torch (and numba) threads (default: torch's default)")
    parser.add_argument("--json", default=None, metavar="FILE", help="write the results as JSON ('-': stdout)")
    parser.add_argument("--plot", default=None, metavar="FILE",
                        help="draw the cost growth (ms per image against batch size) as a PNG")
    parser.add_argument("--data-dir", default=None, help="directory with the four MNIST IDX files")
    parser.add_argument("--seed", type=int, default=1, help="seed of the initial weights and the shuffle (default: 1)")
    parser.add_argument("--layer-reps", type=int, default=10,
                        help="interleaved rounds of the per-layer profile at each point; 0 skips it (default: 10)")
    parser.add_argument("--inference-batches", type=positive_int, default=2,
                        help="test batches of 1000 per inference round (default: 2)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-impl memory probes (subprocesses)")
    parser.add_argument("--compile", action="store_true",
                        help="also time every impl under torch.compile (rows '<impl>+c', as train.py --compile "
                        "runs it), with its compile time and its ratios to eager and to compiled native torch")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)  # internal: run one probe
    args = parser.parse_args(argv)
    if args.layer_reps < 0:
        parser.error(f"argument --layer-reps: expected 0 or more, got {args.layer_reps}")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.memory_probe:
        return memory.probe(args.memory_probe)
    report = matrix.run(args, Path(__file__).resolve())
    print(output.format_report(report), flush=True)
    if args.plot:
        plot.cost_growth_png(report, args.plot)
        print(f"\nwrote {args.plot}")
    if args.json:
        printed = output.write_json(report, args.json)
        if printed is not None:
            sys.stdout.write(printed)
        else:
            print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

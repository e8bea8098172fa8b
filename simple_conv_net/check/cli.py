"""python -m simple_conv_net.check: check anyone's implementation against native PyTorch.

    python -m simple_conv_net.check TARGET [--rubric NAME|FILE] [--json FILE] [--gradescope FILE]
                                           [--feedback FILE] [--form NAME|FORM_FILE.py] [--strict] ...
    python -m simple_conv_net.check --batch DIR [--out DIR] [--force] [--rubric ...] ...
    python -m simple_conv_net.check autograder --rubric ... [-o autograder.zip]     (see autograder.py)
    python -m simple_conv_net.check run-autograder autograder.zip SUBMISSION [--setup]

TARGET is a .py file, a folder holding simple_conv_net_func.py (its sibling modules importable),
an importable module name (vector_ops, simple_conv_net.handout), or CS231n's cs231n/layers.py or
the folder holding it (imported as the package cs231n, see forms/cs231n.py). ``--only NAME ...`` checks
just those functions (``training`` for task 3). Exit status: 0 when every function passes, 1 when
something fails, 2 for a usage or target error or a grading error (something could not be graded
through no fault of the submission's: missing MNIST files, a checker error, a child process that
could not start; its rubric items are not graded: fix it and run again), 130 after Ctrl-C and 143
after SIGTERM (both stop every child, remove its folders, and keep what a batch graded).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import traceback
from pathlib import Path

import torch

from ..cli import non_negative_int, positive_float, positive_int
from . import report
from .forms import FORMS, all_names, load_form
from .grade import TRAINING, Options, check
from .plans import Settings
from .progress import Progress
from .rubric import RubricError, load
from .sandbox import Limits
from .schedule import Budget
from .servers import SANDBOXES, SandboxError, server_for
from .targets import TargetError, resolve


def form_argument(value: str) -> str:
    """--form: a registered form's name, or an instructor's form file (loaded and registered): the form's name."""
    if value in FORMS:
        return value
    if not value.endswith(".py"):
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(FORMS)} or a form file (.py), got {value!r}")
    try:
        return load_form(value).name
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix(f"--form {Path(value).resolve()}: ")) from error


def model_class(value: str) -> str:
    """--model-class: the class the model form checks (a Python name)."""
    if not value.isidentifier():
        raise argparse.ArgumentTypeError(f"expected the name of a class (a Python identifier), got {value!r}")
    from .forms import model
    model.use_class(value)
    return value


def parse_args(argv=None) -> argparse.Namespace:
    argv = sys.argv[1:] if argv is None else list(argv)
    early = argparse.ArgumentParser(prog="python -m simple_conv_net.check", add_help=False)
    early.add_argument("--form", type=form_argument)
    early.add_argument("--model-class", type=model_class)
    early.parse_known_args(argv)             # a form file's names, or the model's class, are --only's choices too
    parser = argparse.ArgumentParser(prog="python -m simple_conv_net.check",
                                     description="Check anyone's implementation against native PyTorch.")
    parser.add_argument("target", nargs="?", help="a .py file, a folder holding simple_conv_net_func.py, or a module")
    parser.add_argument("--batch", metavar="DIR", help="grade every submission in DIR (each subfolder or .py file)")
    parser.add_argument("--out", metavar="DIR", help="--batch: where the gradebook and reports go "
                                                     "(default: DIR-results beside DIR)")
    parser.add_argument("--force", action="store_true", help="--batch: grade again what is already graded")
    parser.add_argument("--form", metavar="NAME|FILE", type=form_argument,
                        help=f"the form to read the module in: {', '.join(FORMS)}, or an instructor's form file "
                             f"(a .py that builds FORM, see docs; trusted code: it runs in the checker's process) "
                             f"(default: detected from the names the module defines)")
    parser.add_argument("--model-class", metavar="NAME", type=model_class,
                        help="the model form: the nn.Module class to check (default: LeNet)")
    parser.add_argument("--rubric", metavar="NAME|FILE",
                        help="homework (seed 000's split), cs231n (a point per forward/backward pair), cmu-hw7 (seed 003), "
                             "lenet-hw5 (seed 001) or a rubric JSON file (default: the form's own: homework for the "
                             "handout form, a point per function for the functional form)")
    parser.add_argument("--strict", action="store_true",
                        help="the forms with general cases (cs231n, lenet-dict, form files): those cases (non-square inputs, "
                             "other strides, overlapping windows, other paddings, N = 1) fail a function too, not only "
                             "the assignment's own cases (default: reported only)")
    parser.add_argument("--json", metavar="FILE", help="write the report as JSON")
    parser.add_argument("--gradescope", metavar="FILE", help="write Gradescope's results.json")
    parser.add_argument("--prairielearn", metavar="FILE", help="write PrairieLearn's external grader results.json")
    parser.add_argument("--feedback", metavar="FILE", help="write a Markdown report for the student")
    parser.add_argument("--only", nargs="+", metavar="NAME", choices=[*all_names(), TRAINING],
                        help="check just these functions ('training' for task 3; the rubric's other items are not "
                             "graded); give it after TARGET")
    parser.add_argument("--timeout", type=positive_float, default=60.0, metavar="S",
                        help="the time budget of each function, in seconds (default: 60): its calls are planned from "
                             "the time of its first, cheapest one, in order (small shapes, the homework's shapes, more "
                             "batch sizes, gradients, timing), and a call that would not fit is not run, and not "
                             "checked: slow code is no fault. The homework's shapes run once even beyond it, up to "
                             "--call-timeout; task 3 trains the steps that fit it (at least 30)")
    parser.add_argument("--call-timeout", type=positive_float, default=120.0, metavar="S",
                        help="the most one call may take, in seconds (default: 120): a call that does not return "
                             "within it (or within a few times its estimate) is stopped and not checked; a function "
                             "whose first, smallest call does not return within it is a timeout (a hang)")
    parser.add_argument("--memory-mb", type=positive_int, default=4096, metavar="MB",
                        help="memory limit of each child process (RLIMIT_DATA; default: 4096)")
    parser.add_argument("--sandbox", choices=SANDBOXES, default="auto",
                        help="run each child in bubblewrap's sandbox (bwrap; exit status 2 where it cannot start), "
                             "without it (none), or in it where it works (auto, the default: one line says when it "
                             "does not)")
    parser.add_argument("--jobs", type=positive_int, default=os.cpu_count() or 1, metavar="N",
                        help="child processes at once (default: the number of CPUs)")
    parser.add_argument("--batch-sizes", type=positive_int, nargs="+", default=[1, 4, 64], metavar="N",
                        help="batch sizes of the vector functions' checks (default: 1 4 64)")
    parser.add_argument("--scalar-batch-sizes", type=positive_int, nargs="+", default=[1, 2], metavar="N",
                        help="batch sizes of the scalar functions' checks, which may be Python loops (default: 1 2)")
    parser.add_argument("--speed-repeats", type=positive_int, default=5, metavar="N",
                        help="timed calls of each vector function at the largest batch (default: 5)")
    parser.add_argument("--train-steps", type=non_negative_int, default=200, metavar="N",
                        help="SGD steps of the training check, 0 to skip it (default: 200)")
    parser.add_argument("--test-samples", type=positive_int, default=1000, metavar="N",
                        help="MNIST test images the trained nets are scored on (default: 1000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs and weights (default: 0)")
    parser.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files")
    args = parser.parse_args(argv)
    if (args.target is None) == (args.batch is None):
        parser.error("give either a TARGET or --batch DIR")
    if args.batch is None and (args.out or args.force):
        parser.error("--out and --force are options of --batch")
    if args.batch is not None and (args.json or args.gradescope or args.feedback or args.prairielearn):
        parser.error("--batch writes a JSON, a feedback file and a Gradescope file per submission into --out; "
                     "--json, --gradescope, --prairielearn and --feedback are for a single TARGET")
    if args.batch is not None and args.only:
        parser.error("--only is for a single TARGET (a batch grades every function of every submission)")
    return args


def options_of(args) -> Options:
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    settings = Settings(tuple(sorted(set(args.batch_sizes))), tuple(sorted(set(args.scalar_batch_sizes))),
                        args.speed_repeats, args.seed, args.data_dir, args.train_steps, args.test_samples, args.strict)
    only = None if args.only is None else tuple(dict.fromkeys(args.only))
    return Options(settings, Limits(args.call_timeout, args.memory_mb, threads, sandbox=args.sandbox), args.jobs,
                   args.form, Budget(args.timeout, args.call_timeout), only)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: the check stops its children and removes their folders, then ends."""


def _terminate(signum, frame):
    raise Terminated()


@contextlib.contextmanager
def terminated_as_interrupted():
    """SIGTERM raises Terminated in the main thread while the block runs (the previous handler after it)."""
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:      # not the main thread: nothing to handle here
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in ("autograder", "run-autograder"):     # (a folder of that name: ./autograder)
        from .autograder import main as autograder_main
        return autograder_main(argv)
    args = parse_args(argv)
    torch.set_num_threads(1)   # this process only judges: small tensors, while the children compute
    with terminated_as_interrupted():
        return _run(args)


def _run(args) -> int:
    try:
        rubric = load(args.rubric) if args.rubric else None
        options = options_of(args)
        if args.sandbox == "bwrap":
            server_for(args.sandbox)      # the sandbox, or exit 2 before anything is checked
        if args.batch:
            from .batch import grade_batch
            return grade_batch(args.batch, args.out, options, rubric, args.force)
        target = resolve(args.target)
        progress = Progress()
        try:
            result = check(target, options, rubric, progress)
        finally:
            progress.close()
    except (TargetError, RubricError, SandboxError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # noqa: BLE001 - a bug of the checker's (or a broken environment): a grading error
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        print("".join(lines[-4:]).rstrip(), file=sys.stderr)
        print(f"grading error: the checker failed ({type(error).__name__}: {error}); this is not the submission's "
              f"fault, and nothing was graded", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        stopped = isinstance(interrupt, Terminated)
        print(f"{'terminated' if stopped else 'interrupted'}: every child stopped; a batch keeps the submissions it "
              f"graded", file=sys.stderr)
        return 128 + (signal.SIGTERM if stopped else signal.SIGINT)
    print(report.card(result))
    report.write_outputs(result, args.json, args.gradescope, args.feedback, args.prairielearn)
    return report.exit_status([result])

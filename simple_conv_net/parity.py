"""Layer-by-layer parity report: one batch through native PyTorch and through an impl.

    python -m simple_conv_net.parity --impl vector [--model simple|lenet|lenet5] [--dtype float32|float64]
                                     [--batch-size 64] [--seed 0] [--data mnist|random] [--data-dir DIR]
                                     [--chained] [--json FILE]
    python -m simple_conv_net.parity --finite-diff [--layer NAME] [--fd-entries N] ...

Both nets start from identical weights and see the same batch. The report has one row per
named intermediate of the forward pass (and the loss), and one per gradient of the loss:
with respect to every intermediate, the input and every parameter. Each row gives the shape,
diff_mse (the homework's measure), the max absolute error and the max relative error

    max_rel = max |candidate - reference| / max |reference|

(relative to the largest reference value, so entries near zero do not blow it up), and
PASS when max_rel <= the tolerance of the dtype (TOLERANCE below). The exit code is 0 only
if every row passes. ``--finite-diff`` checks the impl's gradients against central differences of
the loss instead (seed 003 section 8; see simple_conv_net.finite_diff).

Tolerances: float64 1e-10 (the harness's promise; measured errors are ~1e-15), float32 1e-5
(about 80 units in the last place of the largest value: room for a different but correct
summation order over up to 2880 terms, far below what any indexing or sign error produces).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass

import torch

from . import data
from .backends import IMPLS
from .cli import positive_int
from .handout import diff_mse
from .io import atomic_write_text
from .model import MODELS, OpsNet, build_model

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class Row:
    kind: str          # 'forward' or 'grad'
    name: str
    shape: tuple
    diff_mse: float
    max_abs: float
    max_rel: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_rel <= self.tolerance  # NaN fails


def compare(kind: str, name: str, reference: torch.Tensor, candidate: torch.Tensor, tolerance: float) -> Row:
    """One row of the report: how far ``candidate`` is from ``reference``."""
    if reference.shape != candidate.shape:
        raise ValueError(f"{kind} {name}: shapes differ, reference {tuple(reference.shape)} "
                         f"vs candidate {tuple(candidate.shape)}")
    reference, candidate = reference.detach().double(), candidate.detach().double()
    max_abs = (candidate - reference).abs().max().item() if reference.numel() else 0.0
    scale = reference.abs().max().item() if reference.numel() else 0.0
    max_rel = max_abs / scale if scale > 0 else max_abs
    return Row(kind, name, tuple(reference.shape), diff_mse(reference, candidate), max_abs, max_rel, tolerance)


def forward_backward(model: OpsNet, x: torch.Tensor, target: torch.Tensor):
    """Run a forward and backward pass; return the intermediates (with .grad kept), the input and the loss."""
    x = x.detach().clone().requires_grad_(True)
    model.zero_grad(set_to_none=True)
    output, intermediates = model(x, return_intermediates=True)
    for tensor in intermediates.values():
        tensor.retain_grad()
    loss = model.loss(output, target)
    loss.backward()
    return intermediates, x, loss


def _models(model: str, impl: str, x: torch.Tensor, seed: int, batch_norm: bool) -> tuple[OpsNet, OpsNet]:
    torch.manual_seed(seed)
    reference = build_model(model, "torch", x.shape[1:], batch_norm=batch_norm).to(x.device, x.dtype)
    candidate = build_model(model, impl, x.shape[1:], batch_norm=batch_norm).to(x.device, x.dtype)
    candidate.load_state_dict(reference.state_dict())
    return reference, candidate


def parity_rows(impl: str, x: torch.Tensor, target: torch.Tensor, seed: int = 0, chained: bool = False,
                model: str = "simple", batch_norm: bool = False) -> list[Row]:
    """Compare model ``model`` with impl ``impl`` against native torch from identical weights on one batch.

    Layer by layer (default): each layer of the candidate is fed the reference's input to that
    layer, and its backward the reference's gradient of its output, so every row measures one
    op alone. Chained: the candidate net runs on its own, and errors compound along it.
    """
    reference, candidate = _models(model, impl, x, seed, batch_norm)
    names = reference.intermediates()
    tolerance = TOLERANCE[x.dtype]
    ref_z, ref_x, ref_loss = forward_backward(reference, x, target)
    can_z, can_x, can_loss = (forward_backward(candidate, x, target) if chained
                              else _layer_by_layer(candidate, ref_z, ref_x, target))

    rows = [compare("forward", name, ref_z[name], can_z[name], tolerance) for name in names]
    rows.append(compare("forward", "loss", ref_loss, can_loss, tolerance))
    rows += [compare("grad", name, ref_z[name].grad, can_z[name].grad, tolerance) for name in reversed(names)]
    rows.append(compare("grad", "input", ref_x.grad, can_x.grad, tolerance))
    can_params = dict(candidate.named_parameters())
    rows += [compare("grad", name, p.grad, can_params[name].grad, tolerance) for name, p in reference.named_parameters()]
    return rows


def _layer_by_layer(candidate: OpsNet, ref_z: dict, ref_x: torch.Tensor, target: torch.Tensor):
    """Run each candidate layer on the reference's input and upstream gradient.

    Returns the candidate's outputs, each holding in .grad the gradient its consumer sent back
    (as forward_backward does), the input with the first layer's input gradient, and the loss.
    """
    candidate.zero_grad(set_to_none=True)
    inputs, graphs = {}, {}
    names = candidate.intermediates()
    previous = ref_x
    for name, _, layer in candidate.layers():  # each layer runs once (batch norm's statistics move once)
        inputs[name] = previous.detach().clone().requires_grad_(True)
        graphs[name] = layer(candidate.ops, inputs[name])
        previous = ref_z[name]
    log_probs = ref_z[names[-1]].detach().clone().requires_grad_(True)
    loss = candidate.loss(log_probs, target)
    loss.backward()
    for name in names:
        graphs[name].backward(ref_z[name].grad)
    outputs = {name: graph.detach() for name, graph in graphs.items()}
    outputs[names[-1]].grad = log_probs.grad
    for earlier, later in zip(names, names[1:]):
        outputs[earlier].grad = inputs[later].grad
    return outputs, inputs[names[0]], loss.detach()


def make_batch(source: str, batch_size: int, dtype: torch.dtype, seed: int, data_dir=None, shape=(1, 28, 28)):
    """The first ``batch_size`` MNIST test images, or a seeded random batch of ``shape``."""
    if source == "mnist":
        images, labels = data.load_mnist("test", data_dir)
        return images[:batch_size].to(dtype), labels[:batch_size]
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, *shape, generator=generator, dtype=dtype)
    return x, torch.randint(0, 10, (batch_size,), generator=generator)


def format_table(rows: list[Row]) -> str:
    header = f"{'':8}{'tensor':<20}{'shape':<20}{'diff_mse':>11}{'max abs':>11}{'max rel':>11}{'tol':>9}  result"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.kind:<8}{row.name:<20}{str(list(row.shape)):<20}{row.diff_mse:>11.2e}{row.max_abs:>11.2e}"
            f"{row.max_rel:>11.2e}{row.tolerance:>9.0e}  {'PASS' if row.passed else 'FAIL'}"
        )
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m simple_conv_net.parity", description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", choices=[i for i in IMPLS if i != "torch"], default="vector",
                        help="implementation to check against native PyTorch (default: vector)")
    parser.add_argument("--model", choices=list(MODELS), default="simple",
                        help="network: SimpleConvNet, LeNet or LeNet-5 (default: simple)")
    parser.add_argument("--batch-norm", action="store_true", help="LeNet-5 with batch normalisation")
    parser.add_argument("--input-shape", type=int, nargs=3, metavar=("C", "H", "W"), default=(1, 28, 28),
                        help="input shape for --data random, e.g. 3 32 32 for LeNet-5 on CIFAR-10 (default: 1 28 28)")
    parser.add_argument("--dtype", choices=list(DTYPES), default="float32")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="device of both nets (default: cuda when available, else cpu)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="images in the batch (default: 64; 2 with --finite-diff, which runs the net twice per entry)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights (and of the random batch)")
    parser.add_argument("--data", choices=["mnist", "random"], default="mnist",
                        help="mnist: the first test images; random: normal noise (default: mnist)")
    parser.add_argument("--data-dir", default=None, help="directory with the MNIST IDX files")
    parser.add_argument("--chained", action="store_true",
                        help="run the whole candidate net on its own instead of layer by layer (errors compound; "
                             "a max-pool tie the two nets round differently sends a gradient elsewhere)")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    parser.add_argument("--finite-diff", action="store_true",
                        help="check the impl's gradients against central differences instead of torch "
                             "(float64, on the CPU)")
    parser.add_argument("--layer", default=None,
                        help="--finite-diff: one layer by name (e.g. conv, fc1) instead of the whole net")
    parser.add_argument("--fd-entries", type=positive_int, default=32, metavar="N",
                        help="--finite-diff: entries checked per tensor, a seeded sample (default: 32)")
    args = parser.parse_args(argv)
    if args.finite_diff:
        given = [flag for flag, value in (("--chained", args.chained), ("--json", args.json),
                                          ("--batch-norm", args.batch_norm)) if value]
        if given:
            parser.error(f"argument --finite-diff: cannot be combined with {', '.join(given)}")
    elif args.layer is not None:
        parser.error("argument --layer: an option of --finite-diff only")
    if args.batch_size is None:
        args.batch_size = 2 if args.finite_diff else 64
    return args


def finite_diff_main(args) -> int:
    from .finite_diff import finite_diff_report

    try:
        rows, text = finite_diff_report(args.impl, args.model, DTYPES[args.dtype], args.layer, args.fd_entries,
                                        batch_size=args.batch_size,
                                        seed=args.seed, data=args.data, data_dir=args.data_dir,
                                        input_shape=args.input_shape)
    except (ValueError, data.MNISTNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(text)
    return 0 if all(row.passed for row in rows) else 1


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.finite_diff:
        return finite_diff_main(args)
    dtype = DTYPES[args.dtype]
    try:
        x, target = make_batch(args.data, args.batch_size, dtype, args.seed, args.data_dir, args.input_shape)
        x, target = x.to(args.device), target.to(args.device)
    except data.MNISTNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        rows = parity_rows(args.impl, x, target, args.seed, chained=args.chained, model=args.model,
                           batch_norm=args.batch_norm)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    failed = [row for row in rows if not row.passed]
    mode = "chained" if args.chained else "layer by layer"
    model = args.model + (" with batch norm" if args.batch_norm else "")
    print(f"parity of {model} with impl '{args.impl}' against native torch, {mode}: {args.dtype} on {args.device}, "
          f"batch {len(x)} of {args.data}, seed {args.seed}")
    print(format_table(rows))
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    if args.json:
        report = {"model": args.model, "impl": args.impl, "mode": mode, "dtype": args.dtype, "device": args.device, "batch_size": len(x), "data": args.data,
                  "seed": args.seed, "passed": not failed,
                  "rows": [dict(asdict(row), passed=row.passed) for row in rows]}
        atomic_write_text(args.json, json.dumps(report, indent=2))
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())

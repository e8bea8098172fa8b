"""Layer-by-layer parity report: one batch through native PyTorch and through an impl.

    python -m simple_conv_net.parity --impl vector [--model simple|lenet|lenet5] [--dtype float32|float64]
                                     [--batch-size 64] [--seed 0] [--data mnist|random] [--data-dir DIR]
                                     [--chained] [--json FILE]
    python -m simple_conv_net.parity --finite-diff [--layer NAME] [--fd-entries N] ...

Both nets start from identical weights and see the same batch. The report has one row per
named intermediate of the forward pass (and the loss), and one per gradient of the loss:
with respect to every intermediate, the input and every parameter. Each row gives the shape,
diff_mse (the homework's measure), the max absolute error and the max relative error against
the truth, native PyTorch run in float64 on the same inputs, and PASS when the max relative
error is within the tolerance; for a float32 run it also shows native float32 PyTorch's own
error against that truth ("torch rel"). The rule, the truth and the tolerances are those of
simple_conv_net.compare, the one definition of "matches" in the project. The exit code is 0 only
if every row passes. ``--finite-diff`` checks the impl's gradients against central differences of
the loss instead (seed 003 section 8; see simple_conv_net.finite_diff).
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
from .compare import Comparison, compare
from .io import atomic_write_text
from .model import MODELS, OpsNet, build_model

DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass
class Row:
    """One row of the report: a :class:`Comparison` of one tensor, with its kind and name."""

    kind: str          # 'forward' or 'grad'
    name: str
    shape: tuple
    diff_mse: float
    max_abs: float
    max_rel: float
    tolerance: float
    native_rel: float | None = None   # native PyTorch's own max_rel in the run's dtype (float32 runs)
    problem: str | None = None

    @property
    def passed(self) -> bool:
        return self.problem is None and self.max_rel <= self.tolerance  # NaN fails

    @classmethod
    def of(cls, kind: str, name: str, result: Comparison) -> "Row":
        return cls(kind, name, result.shape, result.diff_mse, result.max_abs, result.max_rel, result.tolerance,
                   result.native_rel, result.problem)


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


def _model(name: str, impl: str, x: torch.Tensor, batch_norm: bool, state: dict, dtype: torch.dtype) -> OpsNet:
    model = build_model(name, impl, x.shape[1:], batch_norm=batch_norm).to(x.device, dtype)
    model.load_state_dict(state)
    return model


def parity_rows(impl: str, x: torch.Tensor, target: torch.Tensor, seed: int = 0, chained: bool = False,
                model: str = "simple", batch_norm: bool = False) -> list[Row]:
    """Compare model ``model`` with impl ``impl`` against native torch from identical weights on one batch.

    Three nets share the weights: native PyTorch in the batch's dtype (it makes each layer's input
    and upstream gradient), the candidate, and the truth, native PyTorch in float64 (see
    simple_conv_net.compare). Layer by layer (default): each layer of the candidate and of the
    truth is fed the native net's input to that layer, and its backward the native net's gradient
    of its output, so every row measures one op alone. Chained: each net runs on its own, and
    errors compound along it.
    """
    torch.manual_seed(seed)
    native = build_model(model, "torch", x.shape[1:], batch_norm=batch_norm).to(x.device, x.dtype)
    state = native.state_dict()
    candidate = _model(model, impl, x, batch_norm, state, x.dtype)
    truth = _model(model, "torch", x, batch_norm, state, torch.float64) if x.dtype != torch.float64 else None
    nat_z, nat_x, nat_loss = forward_backward(native, x, target)

    def run(net: OpsNet):
        if chained:
            return forward_backward(net, x.to(next(net.parameters()).dtype), target)
        return _layer_by_layer(net, nat_z, nat_x, target)

    can_z, can_x, can_loss = run(candidate)
    tru_z, tru_x, tru_loss = (nat_z, nat_x, nat_loss) if truth is None else run(truth)

    def row(kind, name, true, ours, theirs):
        """``theirs`` (native, the run's dtype) widens the tolerance only when the truth is float64 and it is not."""
        return Row.of(kind, name, compare(true, ours, None if truth is None else theirs))

    names = native.intermediates()
    rows = [row("forward", name, tru_z[name], can_z[name], nat_z[name]) for name in names]
    rows.append(row("forward", "loss", tru_loss, can_loss, nat_loss))
    rows += [row("grad", name, tru_z[name].grad, can_z[name].grad, nat_z[name].grad) for name in reversed(names)]
    rows.append(row("grad", "input", tru_x.grad, can_x.grad, nat_x.grad))
    can_params = dict(candidate.named_parameters())
    tru_params = dict((native if truth is None else truth).named_parameters())
    rows += [row("grad", name, tru_params[name].grad, can_params[name].grad, p.grad)
             for name, p in native.named_parameters()]
    return rows


def _layer_by_layer(net: OpsNet, nat_z: dict, nat_x: torch.Tensor, target: torch.Tensor):
    """Run each layer of ``net`` on the native net's input and upstream gradient (cast to ``net``'s dtype).

    Returns the outputs, each holding in .grad the gradient its consumer sent back (as
    forward_backward does), the input with the first layer's input gradient, and the loss.
    """
    dtype = next(net.parameters()).dtype
    net.zero_grad(set_to_none=True)
    inputs, graphs = {}, {}
    names = net.intermediates()
    previous = nat_x
    for name, _, layer in net.layers():  # each layer runs once (batch norm's statistics move once)
        inputs[name] = previous.detach().to(dtype).clone().requires_grad_(True)
        graphs[name] = layer(net.ops, inputs[name])
        previous = nat_z[name]
    log_probs = nat_z[names[-1]].detach().to(dtype).clone().requires_grad_(True)
    loss = net.loss(log_probs, target)
    loss.backward()
    for name in names:
        graphs[name].backward(nat_z[name].grad.to(dtype))
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
    """The rows as a table; "torch rel" is native PyTorch's own error in the run's dtype, where measured."""
    header = (f"{'':8}{'tensor':<20}{'shape':<20}{'diff_mse':>11}{'max abs':>11}{'max rel':>11}{'torch rel':>11}"
              f"{'tol':>9}  result")
    lines = [header, "-" * len(header)]
    for row in rows:
        native = "" if row.native_rel is None else f"{row.native_rel:.2e}"
        lines.append(
            f"{row.kind:<8}{row.name:<20}{str(list(row.shape)):<20}{row.diff_mse:>11.2e}{row.max_abs:>11.2e}"
            f"{row.max_rel:>11.2e}{native:>11}{row.tolerance:>9.0e}  {'PASS' if row.passed else 'FAIL'}"
            + (f"  ({row.problem})" if row.problem else "")
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

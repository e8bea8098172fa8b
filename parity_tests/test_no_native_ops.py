"""The custom ops never call the native op they are checked against, nor lean on autograd for a backward.

Two recorders watch a forward and backward pass:
- a TorchFunctionMode sees the Python-level torch calls of the forward (F.conv2d, F.relu, ...);
- a TorchDispatchMode sees every operator that runs, in the forward and in the backward alike
  (the autograd engine runs backward kernels below the Python level, where only the dispatcher
  sees them), so a backward that recomputed a native op to differentiate it is caught.
Positive controls show both recorders catch the native ops when they are there.

Operators are recorded with their namespace. The project's own kernel ops (``scalar_ops::``,
``vector_ops::``, see simple_conv_net.custom_ops) are named after the layers they compute, so
their names hold the forbidden words; only ATen's (or any other library's) are forbidden. In
eager mode the Functions run the kernels themselves, not through the dispatcher, so the recorder
sees every ATen operator inside a kernel too. The graphs torch.compile makes are checked the same
way in test_compile (there a registered op is opaque: its body is checked here, in eager mode).
"""

import ast
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

from simple_conv_net.backends import get_ops
from simple_conv_net.functions import Kernels, conv2d_op
from simple_conv_net.model import build_model
from simple_conv_net.parity import make_batch

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("conv", "pool", "relu", "threshold", "softmax", "nll", "linear", "unfold", "fold", "im2col",
             "col2im", "cross_entropy", "norm")
OWN_NAMESPACES = ("scalar_ops", "vector_ops")
NETS = {"simple": ("simple", (1, 28, 28), False), "lenet5-batch-norm": ("lenet5", (3, 32, 32), True)}


class RecordFunctions(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.add(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


class RecordOperators(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.names.add(func._schema.name)                 # with its namespace: 'aten::convolution'
        return func(*args, **(kwargs or {}))


def forbidden(names):
    """The names that hold a forbidden word, but for the project's own ops ('scalar_ops::conv2d_forward')."""
    return sorted(name for name in names if name.partition("::")[0] not in OWN_NAMESPACES
                  and any(word in name.lower() for word in FORBIDDEN))


def run(impl, net):
    name, shape, batch_norm = NETS[net]
    x, target = make_batch("random", 4, torch.float32, seed=0, shape=shape)
    model = build_model(name, impl, shape, batch_norm=batch_norm)
    with RecordFunctions() as functions, RecordOperators() as operators:
        model.loss(model(x.requires_grad_()), target).backward()
    return functions.names, operators.names


@pytest.mark.parametrize("net", NETS)
def test_no_native_op_in_forward_or_backward(impl, net):
    functions, operators = run(impl, net)
    assert functions and operators, "a recorder saw nothing: the check would be vacuous"
    assert not forbidden(functions), f"native ops called by impl {impl!r}: {forbidden(functions)}"
    assert not forbidden(operators), f"native operators run by impl {impl!r}: {forbidden(operators)}"


def every_argument(ops):
    """Forward and backward of each op with the arguments no model uses (dilation, groups, 'same' padding, an
    unbatched input, ceil_mode, return_indices, inplace, dtype, class weights, ignore_index, K-dimensional nll)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 9, 8, generator=g, requires_grad=True)
    w = torch.randn(6, 2, 3, 2, generator=g, requires_grad=True)
    y = ops.conv2d(x, w, None, 1, "same", (2, 1), 2) + ops.conv2d(x[0], w, None, 2, 1, 2, 2).sum()
    pooled, _ = ops.max_pool2d(y, 3, 2, 1, (1, 2), True, True)
    z = ops.relu(pooled * 1.0, inplace=True)
    logp = ops.log_softmax(z, 1, dtype=torch.float64)
    loss = ops.nll_loss(logp, torch.randint(0, 6, (2, 5, 4), generator=g), torch.rand(6, dtype=torch.float64),
                        ignore_index=2)
    loss = loss + ops.nll_loss(ops.flatten(logp, 1)[0, :6], torch.tensor(1), reduction="sum")
    loss.backward()


@pytest.mark.parametrize("impl_under_test", ["vector", "scalar"])
def test_no_native_op_on_every_argument(impl_under_test):
    with RecordFunctions() as functions, RecordOperators() as operators:
        every_argument(get_ops(impl_under_test))
    assert functions.names and operators.names, "a recorder saw nothing: the check would be vacuous"
    assert not forbidden(functions.names), forbidden(functions.names)
    assert not forbidden(operators.names), forbidden(operators.names)


def test_recorders_catch_native_ops_on_every_argument():
    with RecordFunctions() as functions, RecordOperators() as operators:
        every_argument(get_ops("torch"))
    assert {"conv2d", "max_pool2d_with_indices", "relu", "log_softmax", "nll_loss"} <= functions.names
    assert {"aten::convolution_backward", "aten::max_pool2d_with_indices_backward", "aten::nll_loss2d_backward"} \
        <= operators.names, operators.names


@pytest.mark.parametrize("net", NETS)
def test_recorders_catch_native_ops(net):
    functions, operators = run("torch", net)
    assert {"conv2d", "max_pool2d", "relu", "linear", "log_softmax", "nll_loss"} <= functions
    backward_only = {"aten::convolution_backward", "aten::max_pool2d_with_indices_backward",
                     "aten::threshold_backward", "aten::_log_softmax_backward_data", "aten::nll_loss_backward"}
    assert backward_only <= operators, f"missing: {backward_only - operators}"
    if NETS[net][2]:
        assert "batch_norm" in functions and any("batch_norm_backward" in op for op in operators)


def test_only_the_projects_own_namespaces_may_use_the_words():
    assert forbidden({"scalar_ops::conv2d_forward", "vector_ops::max_pool2d_backward", "aten::bmm",
                      "aten::convolution", "mylib::conv2d_forward", "relu"}) == ["aten::convolution",
                                                                                  "mylib::conv2d_forward", "relu"]


def test_a_backward_that_calls_a_native_op_is_caught(impl):
    """A conv2d whose backward kernel hands the work to ATen's convolution_backward is caught, whichever
    impl's forward kernel it pairs with."""
    kernels = get_ops(impl).conv2d.kernels

    def backward(grad_output, input, weight, g, needs):
        return torch.ops.aten.convolution_backward(grad_output, input, weight, [g.c_out], [g.s_h, g.s_w],
                                                   [g.p_h, g.p_w], [1, 1], False, [0, 0], 1, list(needs))

    conv2d = conv2d_op(Kernels(kernels.forward, backward))
    x, w = torch.randn(2, 1, 6, 6, requires_grad=True), torch.randn(3, 1, 3, 3, requires_grad=True)
    with RecordOperators() as operators:
        conv2d(x, w).sum().backward()
    assert forbidden(operators.names) == ["aten::convolution_backward"]


def graph_nodes(tensor):
    seen, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(next_fn for next_fn, _ in node.next_functions)
    return {type(node).__name__ for node in seen}


def test_gradients_come_from_hand_written_functions(impl):
    x, target = make_batch("random", 2, torch.float32, seed=0)
    model = build_model("simple", impl)
    nodes = graph_nodes(model.loss(model(x), target))
    ours = {"WeightedSumBackward", "MaxPool2dBackward", "FromOutputBackward", "FlattenBackward", "NLLLossBackward"}
    assert ours <= nodes
    native = {n for n in nodes if any(w in n.lower() for w in FORBIDDEN)} - ours
    assert not native, f"native backward nodes in the graph: {native}"


# The native functions the ops are checked against; none may be named in the ops' code.
NATIVE_NAMES = {"conv1d", "conv2d", "conv3d", "convolution", "max_pool2d", "max_pool2d_with_indices", "relu",
                "relu_", "threshold", "softmax", "log_softmax", "nll_loss", "cross_entropy", "linear", "unfold",
                "fold", "batch_norm", "native_batch_norm"}
# The two impls, and the glue every op of both runs through (argument checks, Functions, op registration).
OPS_SOURCES = sorted([*(p for package in ("vector_ops", "scalar_ops") for p in (ROOT / package).rglob("*.py")),
                      *(ROOT / "simple_conv_net" / name for name in ("checks.py", "functions.py", "custom_ops.py"))])


def native_references(source: str) -> list[str]:
    """What in ``source`` reaches native ops: imports from torch.nn, and attribute access to a native op's
    name (torch.relu, x.unfold, torch.ops.aten.convolution, ...). Docstrings and the ops' own function
    names (def conv2d) are not references, so they are not inspected."""
    offences = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            offences += [f"import {alias.name}" for alias in node.names if alias.name.startswith("torch.nn")]
        elif isinstance(node, ast.ImportFrom) and node.module and (
                node.module.startswith("torch.nn")
                or (node.module == "torch" and any(a.name in ("nn", *NATIVE_NAMES) for a in node.names))):
            offences.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and node.attr in NATIVE_NAMES:
            offences.append(f"line {node.lineno}: .{node.attr}")
    return offences


@pytest.mark.parametrize("path", OPS_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_ops_source_names_no_native_op(path):
    """Static companion of the recorders above, over every file of vector_ops and scalar_ops and their glue."""
    assert not native_references(path.read_text()), f"{path.relative_to(ROOT)}: {native_references(path.read_text())}"


@pytest.mark.parametrize("source", ["import torch.nn.functional as F\n", "from torch import nn\n",
                                    "y = torch.relu(x)\n", "cols = x.unfold(2, 3, 1)\n",
                                    "z = torch.ops.aten.convolution(x, w)\n"])
def test_static_check_catches_a_native_call(source):
    """The static check is not vacuous: each form a native call can take is flagged."""
    assert native_references(source)

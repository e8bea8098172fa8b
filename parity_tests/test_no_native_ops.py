"""The custom ops never call the native op they are checked against, nor lean on autograd for a backward.

Every torch function called during a forward and backward pass is recorded with a
TorchFunctionMode, and none of the forbidden ones may appear. The autograd graph is
checked too: every gradient comes from one of our Functions, not from native backward nodes.
"""

import torch
from torch.overrides import TorchFunctionMode

from simple_conv_net.model import SimpleConvNet
from simple_conv_net.parity import make_batch

FORBIDDEN = ("conv", "pool", "relu", "softmax", "nll", "linear", "unfold", "fold", "cross_entropy", "threshold")


class RecordCalls(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.names = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.names.add(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def test_no_native_op_in_forward_or_backward(impl):
    x, target = make_batch("random", 4, torch.float32, seed=0)
    model = SimpleConvNet(impl)
    with RecordCalls() as calls:
        model.loss(model(x.requires_grad_()), target).backward()
    used = sorted(name for name in calls.names if any(word in name.lower() for word in FORBIDDEN))
    assert not used, f"native ops called by impl {impl!r}: {used}"
    assert calls.names, "the recorder saw nothing: the check would be vacuous"


def test_recorder_catches_native_ops():
    x, target = make_batch("random", 2, torch.float32, seed=0)
    model = SimpleConvNet("torch")
    with RecordCalls() as calls:
        model.loss(model(x), target).backward()
    assert {"conv2d", "max_pool2d", "relu", "linear", "log_softmax", "nll_loss"} <= calls.names


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
    model = SimpleConvNet(impl)
    nodes = graph_nodes(model.loss(model(x), target))
    ours = {"Conv2dBackward", "MaxPool2dBackward", "ReLUBackward", "LinearBackward", "FlattenBackward",
            "LogSoftmaxBackward", "NLLLossBackward"}
    assert ours <= nodes
    native = {n for n in nodes if any(w in n.lower() for w in FORBIDDEN)} - ours
    assert not native, f"native backward nodes in the graph: {native}"

"""What native PyTorch gives for a planned call: the truth (float64) and native in the call's own dtype.

Runs in the checker's own process, never in a child: candidate code cannot touch it. The truth
is native PyTorch on the candidate's inputs upcast to float64 (simple_conv_net.compare), with
the gradients of ``sum(output * grad_output)`` for the inputs the call differentiates; native in
the inputs' dtype is there for compare's tolerance (its own rounding error).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from .forms import native_call
from .plans import Call


@dataclass
class Native:
    output: torch.Tensor
    grads: dict = field(default_factory=dict)     # input name -> gradient
    updated: dict = field(default_factory=dict)   # input name -> its value after the call (in-place ops)


def run_native(call: Call, dtype: torch.dtype | None = None) -> Native:
    """Native PyTorch on fresh copies of the call's inputs, floating ones cast to ``dtype`` if given."""
    def copy(name, tensor):
        if tensor is None:
            return None
        tensor = tensor.to(dtype) if dtype is not None and tensor.is_floating_point() else tensor
        return tensor.clone().requires_grad_(name in call.grad)

    inputs = {name: copy(name, tensor) for name, tensor in call.inputs.items()}
    output = native_call(call.op, inputs, call.options)
    grads = {}
    if call.grad:
        wrt = [inputs[name] for name in call.grad]
        grads = dict(zip(call.grad, torch.autograd.grad(output, wrt, call.grad_output.to(output.dtype))))
    return Native(output.detach(), grads, {name: inputs[name].detach() for name in call.updates})


@dataclass
class Truth:
    """The float64 truth, and native PyTorch in the call's dtype (None when that is float64 itself)."""

    exact: Native
    native: Native | None

    @property
    def dtype(self) -> torch.dtype:
        """The dtype a correct candidate returns."""
        return (self.native or self.exact).output.dtype


def truth_of(call: Call) -> Truth:
    floating = [t for t in call.inputs.values() if t is not None and t.is_floating_point()]
    dtype = floating[0].dtype if floating else torch.float64
    exact = run_native(call, torch.float64)
    return Truth(exact, None if dtype == torch.float64 else run_native(call))


def native_indices(call: Call) -> torch.Tensor:
    """max_pool2d's indices, as native PyTorch returns them with return_indices=True (int64 positions h*W + w in
    each input plane), for a call whose candidate is asked for them (the call's options give the values alone)."""
    with torch.no_grad():
        inputs = {"input": call.inputs["input"].double()}
        return native_call(call.op, inputs, dict(call.options, return_indices=True))[1]


_NATIVE_SECONDS = {}


def native_seconds(call: Call, repeats: int = 3) -> float:
    """Native PyTorch's seconds for the call (forward, and backward if it differentiates), the least of a few runs,
    in this process: the reference of a candidate's time when its timed call did not run. Cached per family."""
    key = (call.family, call.n)
    if key not in _NATIVE_SECONDS:
        found = []
        for _ in range(repeats):
            start = time.perf_counter()
            run_native(call)
            found.append(time.perf_counter() - start)
        _NATIVE_SECONDS[key] = min(found)
    return _NATIVE_SECONDS[key]

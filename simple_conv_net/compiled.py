"""torch.compile for train.py and the benchmark, and what it cost.

Every impl compiles whole: the scalar kernels reach the compiler as registered ops
(``simple_conv_net.custom_ops``), the vector kernels as the tensor code they are, native
torch as itself. The batch dimension is marked dynamic on every call, so one graph serves
every batch size: the last, smaller batch of an epoch and the test batches compile nothing new.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class Compiled:
    """``module``'s forward compiled as one graph (fullgraph: a graph break is an error, never a silent
    fallback to Python), the batch dimension of its input dynamic. Called as the module is; every other
    attribute is the module's own (``loss``, ``train()``, ``parameters()``, ...), and the module itself is
    left as it is, so its state_dict keeps its keys (a compiled module's get an ``_orig_mod.`` prefix).

    A DistributedDataParallel module takes ``fullgraph=False``: dynamo leaves DDP's own bookkeeping
    around the forward to Python and compiles the model inside it (split at DDP's gradient buckets).
    """

    def __init__(self, module: torch.nn.Module, backend: str = "inductor", fullgraph: bool = True):
        self.module = module
        self.graph = torch.compile(module, fullgraph=fullgraph, backend=backend)

    def __call__(self, input: torch.Tensor) -> torch.Tensor:
        # maybe_: a batch size the graph must specialise (a batch of 1) compiles its own graph, no error.
        torch._dynamo.maybe_mark_dynamic(input, 0)
        return self.graph(input)

    def __getattr__(self, name: str):
        return getattr(self.module, name)


class CompileCost(NamedTuple):
    graphs: int       # graphs compiled (a model needs one for training and one for evaluation)
    seconds: float    # spent compiling them, forward and backward graphs together

    def __sub__(self, other: "CompileCost") -> "CompileCost":
        return CompileCost(self.graphs - other.graphs, self.seconds - other.seconds)


def compile_cost() -> CompileCost:
    """What torch.compile has spent in this process so far, from dynamo's own accounting; the difference
    of two readings is what was compiled in between."""
    from torch._dynamo.utils import calculate_time_spent, counters

    return CompileCost(counters["stats"]["unique_graphs"], calculate_time_spent().get("total_wall_time", 0.0))

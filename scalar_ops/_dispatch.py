"""Pick the CPU loops or their CUDA twin by the device of the tensors, written once for every op.

Each scalar op file builds its op as ``op_factory(on_device(Kernels(forward, backward)))``.
For CPU tensors the numba CPU kernels run; for CUDA tensors the function of the same name
in ``scalar_ops.cuda.<same module>`` runs (one thread per output element). The CUDA
module is imported on first use, so a CPU-only machine never needs numba's CUDA target.
"""

from __future__ import annotations

import functools
import importlib

from simple_conv_net.functions import Kernels


def _cuda_twin(function):
    module = importlib.import_module(function.__module__.replace("scalar_ops.", "scalar_ops.cuda.", 1))
    return getattr(module, function.__name__)


def _by_device(function):
    @functools.wraps(function)
    def run(tensor, *args):
        if tensor.is_cuda:
            return _cuda_twin(function)(tensor, *args)
        return function(tensor, *args)

    return run


def on_device(kernels: Kernels) -> Kernels:
    """The same kernels, each running its CUDA twin when its first tensor is on a GPU."""
    return Kernels(_by_device(kernels.forward), _by_device(kernels.backward))

"""The scalar kernels as the custom ops ``scalar_ops::<kernel name>``, written once for every op.

Each scalar op file builds its op as ``op_factory(registered(Kernels(forward, backward)))``:
both kernels become torch.library custom ops (see ``simple_conv_net.custom_ops``), with the
numba CPU function as the ``cpu`` kernel and, as the ``cuda`` kernel, the function of the same
name in ``scalar_ops.cuda.<same module>`` (one GPU thread per output element). In eager mode
the same choice is made by the device of the first tensor without going through the dispatcher
(``simple_conv_net.custom_ops``, the kernel's eager stand-in). The
CUDA module is imported on first use, so a CPU-only machine never needs numba's CUDA target.
"""

from __future__ import annotations

import importlib

from simple_conv_net.custom_ops import register
from simple_conv_net.functions import Kernels

NAMESPACE = "scalar_ops"


def _cuda_twin(function):
    module = importlib.import_module(function.__module__.replace("scalar_ops.", "scalar_ops.cuda.", 1))
    return getattr(module, function.__name__)


def registered(kernels: Kernels) -> Kernels:
    """The kernels as the ops scalar_ops::<name>, CPU loops and CUDA twins, for the Functions to call."""
    return register(NAMESPACE, kernels, cuda_twin=_cuda_twin)

"""The torch <-> numba.cuda glue, written once for every CUDA scalar op.

The op files of ``scalar_ops.cuda`` are about the maths: each checks its arguments
with :func:`checked`, allocates its outputs with :func:`empty` (torch tensors, on the
device of the inputs) and runs a kernel with :func:`launch`, which hands every torch
tensor argument to numba without a copy and picks the grid. Everything about devices
and streams lives here.

On a GPU: a CUDA tensor becomes a numba device array through
``__cuda_array_interface__`` (:func:`numba.cuda.as_cuda_array`, zero copy; numba is
told not to synchronise on the tensor's stream, because the kernel is launched on
that very stream: torch's current stream, wrapped by :func:`numba.cuda.external_stream`).
So a kernel is ordered with the torch ops around it like any torch kernel, and its
outputs are torch tensors from the start.

Under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``, read when numba is imported)
there is no device memory: the kernels run as Python, one Python thread per CUDA
thread, on the numpy views of CPU tensors, and write their outputs in place into torch
CPU tensors. This is how CI, which has no GPU, tests the kernels' index logic.

Importing this module needs no GPU and no simulator; only :func:`launch` does.
"""

from __future__ import annotations

import os

import numba
import torch
from numba import cuda

from scalar_ops._numba import FLOATING, INDEX, MOVABLE, kernel_input

__all__ = ["SIMULATED", "THREADS_PER_BLOCK", "FLOATING", "INDEX", "MOVABLE", "available", "device_type",
           "checked", "empty", "device_array", "stream", "launch"]

SIMULATED = bool(numba.config.ENABLE_CUDASIM)

# On a GPU, 128 threads a block. The simulator runs a block's threads as Python threads
# and its blocks one after another: small blocks keep it quick on small shapes, and make
# every test launch span several blocks, so the block-index arithmetic is exercised too.
THREADS_PER_BLOCK = 32 if SIMULATED else 128

if "NUMBA_CUDA_LOW_OCCUPANCY_WARNINGS" not in os.environ:
    # One thread per output element gives a small layer (a bias gradient, a loss) a grid of
    # one block by design; numba would warn about under-utilisation at every such launch.
    numba.config.CUDA_LOW_OCCUPANCY_WARNINGS = 0


def available() -> bool:
    """Whether the CUDA kernels can run here: under the simulator, or with a GPU that torch and numba both see."""
    if SIMULATED:
        return True
    try:
        return torch.cuda.is_available() and cuda.is_available()
    except Exception:  # a broken driver or toolkit: numba cannot launch, so no
        return False


def device_type() -> str:
    """The torch device type the kernels take tensors on: 'cuda', or 'cpu' under the simulator."""
    return "cpu" if SIMULATED else "cuda"


def checked(op: str, argument: str, tensor: torch.Tensor, dtypes=FLOATING) -> torch.Tensor:
    """``tensor`` detached and contiguous (no copy when it is already), after checking device and dtype.

    Raises, naming the op and the argument, if the tensor is not on a CUDA device (on
    the CPU under the simulator) or has a dtype the kernels are not written for.
    """
    where = ("the CUDA scalar kernels take " + ("CPU tensors under numba's CUDA simulator" if SIMULATED
                                                 else "CUDA tensors") + f"; use the CPU scalar kernels (scalar_ops.{op}) for it")
    return kernel_input(f"scalar_ops.cuda.{op}", argument, tensor, device_type(), dtypes, where)


def empty(shape, dtype: torch.dtype, like: torch.Tensor) -> torch.Tensor:
    """An uninitialised torch tensor for a kernel's output, on the device of ``like``."""
    return torch.empty(tuple(shape), dtype=dtype, device=like.device)


def device_array(tensor: torch.Tensor):
    """What a kernel receives for ``tensor``, sharing its memory (a kernel's writes land in the tensor).

    GPU: a numba device array over the tensor's memory (``__cuda_array_interface__``).
    Simulator: the numpy view of the CPU tensor.
    """
    tensor = tensor.detach()
    if SIMULATED:
        return tensor.numpy()
    # sync=False: the kernel runs on torch's current stream (see stream()), after
    # everything already queued there, so waiting for the tensor's stream is not needed.
    return cuda.as_cuda_array(tensor, sync=False)


def stream(device: torch.device | None = None):
    """torch's current CUDA stream (of ``device``) as a numba stream; 0, the default, under the simulator."""
    if SIMULATED:
        return 0
    return cuda.external_stream(torch.cuda.current_stream(device).cuda_stream)


def launch(kernel, n_threads: int, *args) -> None:
    """Run ``kernel`` on at least ``n_threads`` threads (one per output element), in 1-D blocks.

    Every torch tensor in ``args`` is replaced by :func:`device_array` of it; other
    arguments (ints, floats, None) are passed as they are. Each kernel starts with
    ``t = cuda.grid(1)`` and returns at once if ``t`` is past its last element, as the
    last block may run past the end. Nothing is launched for no threads (an empty output).
    On a GPU the kernel runs on the tensors' device, on torch's current stream there.
    """
    if n_threads <= 0:
        return
    blocks = (n_threads + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK
    if SIMULATED:
        kernel[blocks, THREADS_PER_BLOCK](*[device_array(a) if isinstance(a, torch.Tensor) else a for a in args])
        return
    device = next(a.device for a in args if isinstance(a, torch.Tensor))
    device = torch.device("cuda", torch.cuda.current_device()) if device.index is None else device
    with cuda.gpus[device.index]:
        arrays = [device_array(a) if isinstance(a, torch.Tensor) else a for a in args]
        kernel[blocks, THREADS_PER_BLOCK, stream(device)](*arrays)

"""Numba configuration and the torch <-> numpy glue, written once for every scalar op.

Every kernel of ``scalar_ops`` is a plain Python function of numpy arrays and ints made
of scalar loops, compiled by :func:`jit`. The op files call :func:`as_array` on each
torch tensor they receive and :func:`as_tensor` on each array they return, so the
device and dtype rules live here only.

Threads: on a small machine torch and numba each bring a pool of one thread per core.
They never run at the same time (a kernel runs between two torch ops), so both keep
one thread per core. Numba's pool is its OpenMP threading layer (``omp``, GNU libgomp
on Linux) where it loads, else ``tbb``, else its own ``workqueue``, unless
``NUMBA_THREADING_LAYER`` says otherwise. Measured on a 2-core machine, a SimpleConvNet
training step (batch 64) in the same process as torch's OpenMP pool took 1.0-1.1x the
native torch step with ``omp`` and 2.0-2.1x with ``workqueue``: every workqueue launch
wakes sleeping worker threads while the calling thread waits (about 0.15 ms even for
ReLU), where OpenMP's threads are still spinning and the calling thread does a share
of the work. The price of ``omp``: GNU OpenMP is not fork-safe, so a process *forked*
after a scalar kernel ran is terminated by numba, with a message, if it launches a
parallel scalar kernel itself (forked children that only load data, and spawned or
exec'd processes such as torchrun's, are not affected). Set
``NUMBA_THREADING_LAYER=workqueue`` for programs that do that.
``OMP_WAIT_POLICY=PASSIVE`` was measured too and is not set: it made torch's own step
slower (12.5 ms against 10.9 ms). ``NUMBA_NUM_THREADS`` (or :func:`numba.set_num_threads`)
sets numba's thread count, ``torch.set_num_threads`` torch's.

Interpreted mode: with ``NUMBA_DISABLE_JIT=1`` in the environment :func:`jit` returns
the functions unchanged and ``prange`` is ``range``, so the same loops run as Python
and can be stepped through in a debugger (slowly: use small shapes). Nothing in the
kernels depends on being compiled: accumulators are typed from the arrays
(``a.dtype.type(0)``), which gives float32 in float32 kernels in both modes.
"""

from __future__ import annotations

import os

import numba
import numpy as np
import torch
from numba import prange

__all__ = ["JIT_DISABLED", "FASTMATH", "jit", "prange", "at", "kernel_input", "as_array", "as_tensor", "FLOATING",
           "INDEX", "MOVABLE"]

JIT_DISABLED = bool(numba.config.DISABLE_JIT)

if "NUMBA_THREADING_LAYER" not in os.environ:
    # Must be set before the first parallel kernel launches numba's threads. 'default'
    # takes the first layer of the priority list that loads (see the module doc).
    numba.config.THREADING_LAYER = "default"
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "tbb", "workqueue"]

# The fast-math flags that let LLVM vectorise a float sum (reassociate it into
# several partial sums) and fuse a*b + c into one FMA. They change the rounding of a
# sum as any other summation order would (PyTorch's own order differs too), but not
# its meaning: 'nnan', 'ninf' and 'nsz' are left out, so NaN and +-inf propagate as
# in PyTorch and comparisons (max pooling, ReLU) keep their IEEE behaviour.
FASTMATH = frozenset({"reassoc", "contract"})


def jit(function=None, *, fastmath: bool = False, parallel: bool = True):
    """Compile a kernel: ``@jit``, ``@jit(fastmath=True)`` (kernels that sum floats), ``@jit(parallel=False)``.

    njit with an on-disk cache (``__pycache__`` next to the source), ``parallel=True`` so
    ``prange`` loops run on numba's threads, and numpy's error model (x / 0 gives inf or
    NaN as in PyTorch instead of raising). Small helpers called from kernels, which have
    no ``prange`` of their own, take ``parallel=False``.
    """

    def compiled(fn):
        return numba.njit(
            fn, cache=True, parallel=parallel, error_model="numpy", fastmath=set(FASTMATH) if fastmath else False
        )

    return compiled if function is None else compiled(function)


@jit(parallel=False)
def at(index):
    """An array index that the loop bounds guarantee to be >= 0, typed unsigned.

    Numba treats a signed index like Python does (a negative one counts from the end),
    which costs a test per access and keeps LLVM from vectorising a loop whose index is
    computed, like ``l*s_w + j - p_w``. Marking the index unsigned drops that test. It
    must never be negative: there is no bounds check (interpreted, NumPy raises).
    """
    return np.uint64(index)


FLOATING = (torch.float32, torch.float64)
INDEX = (torch.int64,)
# flatten only moves values, so it takes any dtype numpy and numba share.
MOVABLE = (*FLOATING, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8, torch.bool)


def kernel_input(op: str, argument: str, tensor: torch.Tensor, device_type: str, dtypes, where: str) -> torch.Tensor:
    """``tensor`` detached and contiguous (no copy when it is already), once it is on ``device_type``
    with one of ``dtypes``; else an error naming the op and the argument (``where`` says what to do)."""
    if tensor.device.type != device_type:
        raise RuntimeError(f"{op}(): argument '{argument}' is on {tensor.device}, but {where}")
    if tensor.dtype not in dtypes:
        expected = " or ".join(str(d) for d in dtypes)
        raise TypeError(f"{op}(): argument '{argument}' has dtype {tensor.dtype}; the kernels support {expected}")
    return tensor.detach().contiguous()


def as_array(op: str, argument: str, tensor: torch.Tensor, dtypes=FLOATING) -> np.ndarray:
    """The contiguous numpy array of a CPU tensor, without a copy when it is contiguous already."""
    where = (f"the scalar kernels run on the CPU and on CUDA only; move it with .cpu() "
             f"(or use vector_ops on {tensor.device.type})")
    return kernel_input(f"scalar_ops.{op}", argument, tensor, "cpu", dtypes, where).numpy()


def as_tensor(array: np.ndarray) -> torch.Tensor:
    """A torch tensor sharing the memory of ``array`` (dtype kept: float32 stays float32)."""
    return torch.from_numpy(array)

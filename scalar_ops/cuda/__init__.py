"""The scalar kernels on CUDA: numba.cuda kernels, one thread per output element.

The twin of ``scalar_ops``, file for file: ``scalar_ops.cuda.<op>`` exports
``<op>_forward`` and ``<op>_backward`` with the signatures and return conventions of
``scalar_ops.<op>`` (the kernel contracts of ``simple_conv_net.functions``), taking and
returning torch CUDA tensors. Each thread computes one output element (one weight or
bias element for a weight gradient, summing over the batch and the positions) as the
same literal sum as the CPU loop, with the same equation comments (seed 000 eqs. 1-5,
eq. 6 for the output delta). Gradients are gathers, never scatters, so there are no
atomic adds and every sum runs in a fixed order: the results are deterministic.

Tensors are handed to numba without copies (``__cuda_array_interface__``) and the
kernels run on torch's current stream (see ``scalar_ops.cuda._device``). With
``NUMBA_ENABLE_CUDASIM=1`` (set before numba is imported) the same kernels run under
numba's CUDA simulator, on CPU tensors: that is how the index logic is tested without
a GPU. Importing this package needs neither; :func:`available` says whether the
kernels can run.
"""

from scalar_ops.cuda._device import SIMULATED, available

__all__ = ["available", "SIMULATED"]

"""The CUDA scalar kernels (``scalar_ops.cuda``) against torch.nn.functional.

CI has no GPU, so the kernels' index logic is tested under numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``): the same kernel source, run as Python, one thread at a
time, on CPU tensors. numba reads that setting when it is imported, and pytest's own
process has imported numba without it, so the script runs in a subprocess. It calls
every op's forward and backward kernel functions directly (the ``Window`` geometries
built as the autograd glue builds them), on small shapes, against torch on the CPU in
float64, and prints each error. Then it runs every registered op (``scalar_ops::<kernel>``)
through its CUDA dispatch key, sent there explicitly under the simulator (its tensors are CPU
tensors), and checks that each gives exactly what its twin gives. Not covered without a GPU:
the dispatcher choosing that key for CUDA tensors, and torch.compile on a GPU.

Where a GPU is present the same script runs on CUDA tensors, kernels compiled for the
device; and where a CUDA toolkit's NVVM is present (no GPU needed) every kernel the
script launches is compiled to PTX for the real target, which the simulator does not do.
"""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    r"""
    import os
    import numba
    MODE = os.environ["SCALAR_CUDA_TEST_MODE"]                 # "simulator" or "gpu"
    assert bool(numba.config.ENABLE_CUDASIM) == (MODE == "simulator"), "NUMBA_ENABLE_CUDASIM did not reach numba"
    import torch
    import torch.nn.functional as F
    import scalar_ops.cuda
    from scalar_ops.cuda import batch_norm, conv2d, flatten, linear, log_softmax, nll_loss, pool2d, relu
    from simple_conv_net import checks
    from simple_conv_net.window import Window

    assert scalar_ops.cuda.available()

    RECORD = os.environ.get("SCALAR_CUDA_RECORD")              # a file to list every launch's kernel and types in
    launches = set()
    if RECORD:
        from scalar_ops.cuda import _device
        run_kernel = _device.launch

        def describe(a):
            if isinstance(a, torch.Tensor):
                array = numba.typeof(a.detach().cpu().numpy())
                return "array", str(array.dtype), array.ndim, array.layout
            return (type(a).__name__,)

        def launch(kernel, n_threads, *args):
            function = getattr(kernel, "py_func", None) or kernel.fn    # a dispatcher, or the simulator's kernel
            launches.add((function.__module__, function.__name__, tuple(describe(a) for a in args)))
            run_kernel(kernel, n_threads, *args)

        _device.launch = launch

    DEV = "cpu" if MODE == "simulator" else "cuda"
    D = torch.float64
    torch.manual_seed(0)
    errors = {}

    def on(t):
        return None if t is None else t.to(DEV)

    def record(name, ours, ref, exact=False):
        assert ours.device.type == DEV, (name, ours.device)
        assert ours.dtype == ref.dtype and ours.shape == ref.shape, (name, ours.dtype, ref.dtype, ours.shape, ref.shape)
        ours, ref = ours.cpu(), ref.detach()
        if exact:
            assert torch.equal(ours, ref), (name, ours, ref)
        errors[name] = (ours.double() - ref.double()).abs().max().item() if ref.numel() else 0.0

    def reference(fn, inputs):
        # torch's forward, a random output gradient, and torch's gradients wrt the floating inputs
        leaves = [t.clone().requires_grad_(t.is_floating_point()) for t in inputs]
        y = fn(*leaves)
        gy = torch.randn_like(y)
        grads = torch.autograd.grad(y, [t for t in leaves if t.requires_grad], gy)
        return y, gy, grads

    # conv2d: batch 2, C_in 2, 7x6 input, 3 output channels, kernel 3x2, stride 2, padding 1; and with dilation,
    # groups and 'same' padding (an odd total: one more after than before)
    def check_conv2d(name, x, w, b, stride, padding, tolerance=None, dilation=1, groups=1):
        bias = [] if b is None else [b]
        options = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
        y_ref, gy, grads = reference(lambda x, w, *b: F.conv2d(x, w, b[0] if b else None, **options), [x, w, *bias])
        g = checks.conv2d_args(x, w, b, stride, padding, dilation, groups)
        y = conv2d.conv2d_forward(on(x), on(w), on(b), g)
        record(name + " forward", y, y_ref)
        gx, gw, gb = conv2d.conv2d_backward(on(gy), on(x), on(w), g, (True, True, b is not None))
        record(name + " grad input", gx, grads[0])
        record(name + " grad weight", gw, grads[1])
        if b is None:
            assert gb is None
        else:
            record(name + " grad bias", gb, grads[2])
        again = conv2d.conv2d_backward(on(gy), on(x), on(w), g, (True, True, b is not None))
        assert all(torch.equal(a, b) for a, b in zip((gx, gw, gb), again) if a is not None), "not deterministic"
        return y, (gx, gw, gb)

    x, w, b = torch.randn(2, 2, 7, 6, dtype=D), torch.randn(3, 2, 3, 2, dtype=D), torch.randn(3, dtype=D)
    check_conv2d("conv2d s2 p1", x, w, b, (2, 2), (1, 1))
    check_conv2d("conv2d s(2,1) p(0,1) no bias", x, w, None, (2, 1), (0, 1))
    check_conv2d("conv2d d(2,1) groups 2 s(1,2)", torch.randn(2, 4, 7, 6, dtype=D), torch.randn(6, 2, 3, 2, dtype=D),
                 torch.randn(6, dtype=D), (1, 2), (1, 0), dilation=(2, 1), groups=2)
    check_conv2d("conv2d same d(1,3) groups 2", torch.randn(1, 4, 5, 7, dtype=D), torch.randn(2, 2, 3, 2, dtype=D),
                 None, 1, "same", dilation=(1, 3), groups=2)
    g = Window.of(x.shape, 3, (3, 2), (2, 2), (1, 1))
    gy = torch.randn(g.output_shape, dtype=D)
    assert conv2d.conv2d_backward(on(gy), None, on(w), g, (True, False, False))[1:] == (None, None)
    assert conv2d.conv2d_backward(on(gy), on(x), None, g, (False, True, False))[::2] == (None, None)

    # float32 stays float32 (accumulators in the input dtype): against torch in float32
    f32 = check_conv2d("conv2d float32", x.float(), w.float(), b.float(), (2, 2), (1, 1))
    assert f32[0].dtype == torch.float32 and all(t.dtype == torch.float32 for t in f32[1])
    FLOAT32 = {name for name in errors if "float32" in name}

    # max_pool2d 3/2/1: the windows overlap, so an input can be the maximum of several; and with dilation and
    # ceil_mode (the last window runs past the input's end)
    def check_pool(name, x, kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False):
        options = dict(kernel_size=kernel_size, stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode)
        y_ref, gy, (gx_ref,) = reference(lambda x: F.max_pool2d(x, **options), [x])
        index_ref = F.max_pool2d(x, **options, return_indices=True)[1]   # flat index into the H x W plane
        g = checks.max_pool2d_args(x, kernel_size, stride, padding, dilation, ceil_mode)
        y, argmax = pool2d.max_pool2d_forward(on(x), g)
        record(name + " forward", y, y_ref)
        record(name + " argmax", argmax, index_ref, exact=True)
        record(name + " grad input", pool2d.max_pool2d_backward(on(gy), argmax, g), gx_ref)

    check_pool("max_pool2d 3/2/1", torch.randn(2, 2, 7, 6, dtype=D))
    check_pool("max_pool2d ties", torch.randint(0, 2, (2, 2, 7, 6)).to(D))      # first maximum wins, as torch
    check_pool("max_pool2d dilation (2,1) ceil_mode", torch.randn(2, 2, 8, 7, dtype=D), (2, 3), (2, 2), (1, 1),
               (2, 1), True)
    nan = torch.randn(1, 1, 5, 5, dtype=D)
    nan[0, 0, 2, 3] = float("nan")
    y, argmax = pool2d.max_pool2d_forward(on(nan), Window.of(nan.shape, 1, (3, 3), (2, 2), (1, 1)))
    y_ref, index_ref = F.max_pool2d(nan, 3, 2, 1, return_indices=True)
    assert torch.equal(y.cpu().isnan(), y_ref.isnan()) and torch.equal(argmax.cpu(), index_ref), "NaN must propagate"

    # relu, with exact zeros (gradient 0 there, as torch)
    xr = torch.randn(3, 5, dtype=D)
    xr[0, :2] = 0
    y_ref, gy, (gx_ref,) = reference(F.relu, [xr])
    y = relu.relu_forward(on(xr))
    record("relu forward", y, y_ref)
    record("relu grad input", relu.relu_backward(on(gy), y), gx_ref)

    # linear 3x5 -> 4
    xl, wl, bl = torch.randn(3, 5, dtype=D), torch.randn(4, 5, dtype=D), torch.randn(4, dtype=D)
    y_ref, gy, grads = reference(F.linear, [xl, wl, bl])
    record("linear forward", linear.linear_forward(on(xl), on(wl), on(bl)), y_ref)
    for k, grad in enumerate(linear.linear_backward(on(gy), on(xl), on(wl), (True, True, True))):
        record(f"linear grad[{k}]", grad, grads[k])
    record("linear no bias forward", linear.linear_forward(on(xl), on(wl), None), F.linear(xl, wl))

    # flatten: [N, C, H, W] -> [N, C*H*W], and merged dims with an inner dim left over
    for start, end, shape in ((1, 3, (2, 3, 4, 5)), (0, 1, (2, 3, 4)), (1, 1, (2, 3, 4))):
        xf = torch.randn(shape, dtype=D)
        y_ref, gy, (gx_ref,) = reference(lambda x: torch.flatten(x, start, end), [xf])
        record(f"flatten {start}..{end} {list(shape)} forward", flatten.flatten_forward(on(xf), start, end), y_ref,
               exact=True)
        record(f"flatten {start}..{end} {list(shape)} grad input", flatten.flatten_backward(on(gy), xf.shape), gx_ref,
               exact=True)

    # flatten only moves values: any dtype numpy and numba share
    for xi in (torch.arange(24).reshape(2, 3, 4), torch.arange(24).reshape(2, 3, 4) % 3 == 0):
        record(f"flatten {xi.dtype} forward", flatten.flatten_forward(on(xi), 1, 2), torch.flatten(xi, 1), exact=True)
        record(f"flatten {xi.dtype} grad input", flatten.flatten_backward(on(xi.reshape(2, 12)), xi.shape), xi,
               exact=True)

    # log_softmax 3x4
    xs = 10 * torch.randn(3, 4, dtype=D)
    y_ref, gy, (gx_ref,) = reference(lambda x: F.log_softmax(x, dim=1), [xs])
    y = log_softmax.log_softmax_forward(on(xs))
    record("log_softmax forward", y, y_ref)
    record("log_softmax grad input", log_softmax.log_softmax_backward(on(gy), y), gx_ref)

    # nll_loss, each reduction, on [N, C, L] (the kernels' layout) with and without weights and ignored targets
    target = torch.tensor([[1, 0], [3, 2], [2, 2], [0, 1], [2, 3]])
    logp = F.log_softmax(torch.randn(5, 4, 2, dtype=D), dim=1)
    class_weight = torch.rand(4, dtype=D) + 0.5
    for reduction in ("mean", "sum", "none"):
        for weight, ignore_index in ((None, -100), (class_weight, 2)):
            label = f"nll_loss {reduction}{'' if weight is None else ' weight, ignore_index'}"
            options = dict(weight=weight, ignore_index=ignore_index, reduction=reduction)
            y_ref, gy, (gx_ref,) = reference(lambda y: F.nll_loss(y, target, **options), [logp])
            record(label + " forward", nll_loss.nll_loss_forward(on(logp), on(target), on(weight), ignore_index,
                                                                 reduction), y_ref)
            record(label + " grad input", nll_loss.nll_loss_backward(on(gy), on(target), on(weight), logp.shape,
                                                                     ignore_index, reduction), gx_ref)

    # batch_norm on [N, C, L] = [2, 3, 4]: training (running statistics updated in place) and eval
    xb = torch.randn(2, 3, 4, dtype=D)
    gamma, beta = torch.randn(3, dtype=D), torch.randn(3, dtype=D)
    for name, training, affine in (("train", True, True), ("eval", False, True), ("train no affine", True, False)):
        mean0, var0 = torch.randn(3, dtype=D), torch.rand(3, dtype=D) + 0.5
        rm_ref, rv_ref, rm, rv = mean0.clone(), var0.clone(), on(mean0.clone()), on(var0.clone())
        weights = [gamma, beta] if affine else []
        y_ref, gy, grads = reference(
            lambda x, *wb: F.batch_norm(x, rm_ref, rv_ref, *(wb or (None, None)), training=training, momentum=0.1,
                                        eps=1e-5), [xb, *weights])
        y, x_hat, inv_std = batch_norm.batch_norm_forward(
            on(xb), rm, rv, on(gamma) if affine else None, on(beta) if affine else None, training, 0.1, 1e-5)
        record(f"batch_norm {name} forward", y, y_ref)
        record(f"batch_norm {name} running_mean", rm, rm_ref)
        record(f"batch_norm {name} running_var", rv, rv_ref)
        ours = batch_norm.batch_norm_backward(on(gy), x_hat, inv_std, on(gamma) if affine else None, training,
                                              (True, affine, affine))
        for k, grad in enumerate(ours if affine else ours[:1]):
            record(f"batch_norm {name} grad[{k}]", grad, grads[k])

    # The registered ops (simple_conv_net.custom_ops) run these kernels for their CUDA dispatch key. On a GPU
    # the ops dispatch there by the tensors' device; under the simulator, on CPU tensors, each call is sent to
    # the CUDA key explicitly. Either way an op must give exactly what its twin gives called directly.
    import scalar_ops  # noqa: F401 - registers the ops
    from simple_conv_net.custom_ops import CONTRACTS
    CUDA_KEY = torch._C.DispatchKeySet(torch._C.DispatchKey.CUDA)
    through_ops = set()

    def same(name, args, direct):
        op = getattr(torch.ops.scalar_ops, name).default
        ours = op(*args) if MODE == "gpu" else op.redispatch(CUDA_KEY, *args)
        ours, direct = (t if isinstance(t, tuple) else (t,) for t in (ours, direct))
        assert len(ours) == len(direct), name
        for a, b in zip(ours, direct):
            assert (a is None and b is None) or (a.device.type == DEV and torch.equal(a, b)), name
        through_ops.add(name)

    xo, wo, bo = on(x), on(w), on(b)
    gc = Window.of(x.shape, 3, (3, 2), (2, 2), (1, 1))
    gyc = on(torch.randn(gc.output_shape, dtype=D))
    same("conv2d_forward", (xo, wo, bo, list(gc)), conv2d.conv2d_forward(xo, wo, bo, gc))
    same("conv2d_backward", (gyc, xo, wo, list(gc), [True, True, True]), conv2d.conv2d_backward(gyc, xo, wo, gc, (True,) * 3))
    gp = Window.of(x.shape, 2, (3, 3), (2, 2), (1, 1))
    yp, ap = pool2d.max_pool2d_forward(xo, gp)
    gyp = on(torch.randn(gp.output_shape, dtype=D))
    same("max_pool2d_forward", (xo, list(gp)), (yp, ap))
    same("max_pool2d_backward", (gyp, ap, list(gp)), pool2d.max_pool2d_backward(gyp, ap, gp))
    same("relu_forward", (xo,), relu.relu_forward(xo))
    same("relu_backward", (xo, xo), relu.relu_backward(xo, xo))
    xl2, wl2, bl2, gl2 = on(xl), on(wl), on(bl), on(torch.randn(3, 4, dtype=D))
    same("linear_forward", (xl2, wl2, bl2), linear.linear_forward(xl2, wl2, bl2))
    same("linear_backward", (gl2, xl2, wl2, [True, True, True]), linear.linear_backward(gl2, xl2, wl2, (True,) * 3))
    same("flatten_forward", (xo, 1, 3), flatten.flatten_forward(xo, 1, 3))
    same("flatten_backward", (on(x.reshape(2, -1)), list(x.shape)), flatten.flatten_backward(on(x.reshape(2, -1)), x.shape))
    same("log_softmax_forward", (xl2,), log_softmax.log_softmax_forward(xl2))
    same("log_softmax_backward", (xl2, xl2), log_softmax.log_softmax_backward(xl2, xl2))
    logp2, target2, weight2 = on(logp), on(target), on(class_weight)
    same("nll_loss_forward", (logp2, target2, weight2, 2, "mean"), nll_loss.nll_loss_forward(logp2, target2, weight2, 2, "mean"))
    g_loss = on(torch.ones((), dtype=D))
    same("nll_loss_backward", (g_loss, target2, None, list(logp.shape), -100, "sum"),
         nll_loss.nll_loss_backward(g_loss, target2, None, logp.shape, -100, "sum"))
    xb2, gamma2, beta2 = on(xb), on(gamma), on(beta)
    mean2, var2 = on(torch.zeros(3, dtype=D)), on(torch.ones(3, dtype=D))
    rm2, rv2 = mean2.clone(), var2.clone()                      # the twin updates these in place; the op, copies
    direct = batch_norm.batch_norm_forward(xb2, rm2, rv2, gamma2, beta2, True, 0.1, 1e-5)
    same("batch_norm_forward", (xb2, mean2, var2, gamma2, beta2, True, 0.1, 1e-5), (*direct, rm2, rv2))
    gb2 = on(torch.randn(2, 3, 4, dtype=D))
    same("batch_norm_backward", (gb2, direct[1], direct[2], gamma2, True, [True, True, True]),
         batch_norm.batch_norm_backward(gb2, direct[1], direct[2], gamma2, True, (True,) * 3))
    assert through_ops == set(CONTRACTS), set(CONTRACTS) - through_ops

    if MODE == "gpu":
        # on a side stream: the kernels follow torch's current stream, so no explicit synchronisation is needed
        side = torch.cuda.Stream()
        with torch.cuda.stream(side):
            y = conv2d.conv2d_forward(on(x), on(w), on(b), Window.of(x.shape, 3, (3, 2), (2, 2), (1, 1)))
            total = y.sum()
        side.synchronize()
        record("conv2d on a side stream", total, F.conv2d(x, w, b, stride=2, padding=1).sum())

    for name, error in errors.items():
        print(f"{name:<44} max abs error {error:.3g}")
    bad = {name: error for name, error in errors.items()
           if not error <= (1e-5 if name in FLOAT32 else 1e-12)}
    assert not bad, f"CUDA scalar kernels ({MODE}) differ from torch: {bad}"
    if RECORD:
        import json
        with open(RECORD, "w") as file:
            json.dump(sorted(launches), file)
    print("OK", len(errors), "comparisons,", len(through_ops), "ops through their CUDA dispatch key")
    """
)


def _run(mode: str, simulate: bool, script: str = SCRIPT, timeout: int = 300, **env_vars):
    env = dict(os.environ, SCALAR_CUDA_TEST_MODE=mode, PYTHONPATH=os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    ), **env_vars)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    if simulate:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=timeout)
    print(result.stdout)
    print(f"({mode}: {time.perf_counter() - start:.1f} s)")
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "OK" in result.stdout
    return result


@pytest.fixture(scope="module")
def launches(tmp_path_factory):
    """Run the parity script under the simulator once; the file listing its kernel launches."""
    path = tmp_path_factory.mktemp("scalar_cuda") / "launches.json"
    _run("simulator", simulate=True, SCALAR_CUDA_RECORD=str(path))
    return path


def test_cuda_kernels_match_torch_under_the_simulator(launches):
    assert launches.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU (torch.cuda.is_available() is False)")
def test_cuda_kernels_match_torch_on_the_gpu():
    _run("gpu", simulate=False)


IMPORT_SCRIPT = textwrap.dedent(
    r"""
    import numba
    import torch
    assert not numba.config.ENABLE_CUDASIM
    import scalar_ops.cuda
    from scalar_ops.cuda import batch_norm, conv2d, flatten, linear, log_softmax, nll_loss, pool2d, relu
    from numba import cuda

    expected = torch.cuda.is_available() and cuda.is_available()
    assert scalar_ops.cuda.available() == expected, (scalar_ops.cuda.available(), expected)
    try:
        relu.relu_forward(torch.ones(3))
    except RuntimeError as error:
        assert "scalar_ops.cuda.relu(): argument 'input' is on cpu" in str(error), error
    else:
        raise AssertionError("a CPU tensor reached the CUDA kernels")
    print("OK available() =", scalar_ops.cuda.available())
    """
)


def test_import_needs_no_gpu_and_no_simulator():
    """Importing scalar_ops.cuda works without numba's simulator and without a GPU; only launching needs one."""
    _run("import", simulate=False, script=IMPORT_SCRIPT)


PTX_SCRIPT = textwrap.dedent(
    r"""
    # Compile each kernel the simulator ran, with the argument types of those launches,
    # to PTX for a real GPU: the simulator runs the kernels as Python and never compiles
    # them (types, None arguments, dtype.type(0), math functions). No GPU is needed.
    import importlib
    import json
    import os
    import numba
    import numpy as np
    from numba import cuda, types

    assert not numba.config.ENABLE_CUDASIM
    SCALARS = {"NoneType": types.none, "int": types.int64, "float": types.float64, "bool": types.boolean}

    def numba_type(description):
        if description[0] == "array":
            _, dtype, ndim, layout = description
            return types.Array(numba.from_dtype(np.dtype(dtype)), ndim, layout)
        return SCALARS[description[0]]

    with open(os.environ["SCALAR_CUDA_RECORD"]) as file:
        launches = json.load(file)
    kernels = set()
    for module, name, arguments in launches:
        kernel = getattr(importlib.import_module(module), name)
        cuda.compile_ptx(kernel.py_func, tuple(numba_type(a) for a in arguments), cc=(8, 0))
        kernels.add(name)
    print(f"compiled {len(launches)} signatures of {len(kernels)} kernels to PTX:", ", ".join(sorted(kernels)))
    print("OK")
    """
)


def _nvvm():
    try:
        from numba.cuda.cudadrv import nvvm

        return nvvm.is_available()
    except Exception:
        return False


@pytest.mark.skipif(not _nvvm(), reason="no CUDA toolkit NVVM (libnvvm) to compile the kernels with")
def test_cuda_kernels_compile_for_the_gpu(launches):
    _run("ptx", simulate=False, script=PTX_SCRIPT, SCALAR_CUDA_RECORD=str(launches))


@pytest.mark.parametrize("op", ["conv2d", "max_pool2d", "relu", "linear", "flatten", "log_softmax", "nll_loss",
                                "batch_norm"])
def test_every_scalar_op_dispatches_to_its_cuda_twin(op):
    """A CUDA tensor reaches scalar_ops.cuda.<module>.<same name>, for the forward and the backward."""
    from scalar_ops._dispatch import _cuda_twin
    from simple_conv_net.functions import Kernels

    import scalar_ops

    kernels = getattr(scalar_ops, op).kernels
    assert isinstance(kernels, Kernels)
    for run in kernels:
        cpu = run.__wrapped__
        twin = _cuda_twin(cpu)
        assert twin.__module__ == cpu.__module__.replace("scalar_ops.", "scalar_ops.cuda.")
        assert twin.__name__ == cpu.__name__ and twin is not cpu

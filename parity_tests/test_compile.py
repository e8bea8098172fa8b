"""Every impl under torch.compile(fullgraph=True) and torch.export, equal to eager.

The scalar kernels reach the compiler as registered ops with fake implementations
(simple_conv_net.custom_ops), the vector kernels as the tensor code they are, traced. Graph
capture and correctness are checked with the ``aot_eager`` backend (dynamo and AOTAutograd,
the graphs then run op by op), which is quick; inductor, which compiles C++ and takes
seconds to minutes, runs on one small case here and on every model in the slow suite.

The tests run on torch's default thread count. dynamo guards on it, and numba's first parallel
kernel sets the calling thread's OpenMP thread count to numba's own (2 cores: 2), so on one
thread (conftest's one_thread) the first scalar kernel would force a recompilation.
"""

import copy
import functools
import importlib
import importlib.util
import json
import logging
import warnings

import pytest
import torch
from torch._dynamo.backends.common import aot_autograd
from torch._dynamo.testing import CompileCounterWithBackend
from torch._functorch.aot_autograd import make_boxed_func
from torch._subclasses.fake_tensor import FakeTensorMode

import vector_ops

from conftest import assert_close
from simple_conv_net import data
from simple_conv_net.backends import IMPLS
from simple_conv_net.compiled import Compiled
from simple_conv_net.model import build_model
from simple_conv_net.parity import make_batch
from test_benchmark import SCRIPT, positive
from test_no_native_ops import forbidden
from test_train import QUICK, train

vector_pool2d = importlib.import_module("vector_ops.pool2d")  # the module (vector_ops.max_pool2d is the op)

NETS = {"simple": ("simple", (1, 28, 28), False), "lenet": ("lenet", (1, 28, 28), False),
        "lenet5": ("lenet5", (3, 32, 32), False), "lenet5-batch-norm": ("lenet5", (3, 32, 32), True)}


@pytest.fixture(autouse=True)
def fresh_dynamo():
    """Every test compiles from scratch and counts its own compilations."""
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def recording_aot_eager(operators: set):
    """aot_eager (dynamo, then AOTAutograd's forward and backward graphs run op by op) that adds the
    qualified name of every operator in those graphs to ``operators``."""
    def record(graph, example_inputs):
        operators.update(node.target._schema.name for node in graph.graph.nodes
                         if node.op == "call_function" and isinstance(node.target, torch._ops.OpOverload))
        return make_boxed_func(graph.forward)

    return aot_autograd(fw_compiler=record, bw_compiler=record)


def twins(impl, net, seed=0):
    """Two models of ``net`` with ``impl`` and the same weights (batch-norm statistics made non-trivial)."""
    name, shape, batch_norm = NETS[net]
    torch.manual_seed(seed)
    model = build_model(name, impl, shape, batch_norm=batch_norm)
    for buffer_name, buffer in model.named_buffers():
        if buffer_name.endswith("running_mean"):
            buffer.normal_()
        elif buffer_name.endswith("running_var"):
            buffer.uniform_(0.5, 2.0)
    twin = build_model(name, impl, shape, batch_norm=batch_norm)
    twin.load_state_dict(model.state_dict())
    return model, twin


def batch(net, size, seed=0):
    return make_batch("random", size, torch.float32, seed=seed, shape=NETS[net][1])


def train_steps(model, forward, batches):
    """SGD steps (forward, nll loss, backward, step) with ``forward`` standing for the model; the losses."""
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.5)
    losses = []
    for x, target in batches:
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(forward(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.detach())
    return losses


def assert_trains_and_evaluates_as_eager(model, twin, forward, batches, x_eval):
    """SGD steps through ``forward`` (``model`` compiled) give the losses, weights and buffers that eager
    steps of ``twin`` give; then in eval mode, under no_grad as evaluation runs, the same outputs. Judged
    by the parity rule (simple_conv_net.compare): against the same eager steps in float64, within 1e-5
    or 4 times the eager float32 steps' own error, whichever is larger (a compiler reorders sums as any
    other summation order would)."""
    truth = copy.deepcopy(twin).double()
    wide = [(x.double(), target) for x, target in batches]
    results = zip(train_steps(model, forward, batches), train_steps(twin, twin, batches), train_steps(truth, truth, wide))
    for step, (loss, eager, true) in enumerate(results):
        assert_close(f"loss at step {step}", true, loss, eager)
    for (name, value), eager, true in zip(model.state_dict().items(), twin.state_dict().values(),
                                          truth.state_dict().values()):
        if value.is_floating_point():
            assert_close(name, true, value, eager)
        else:
            assert torch.equal(value, eager), name
    for net in (model, twin, truth):
        net.eval()
    with torch.no_grad():
        assert_close("eval output", truth(x_eval.double()), forward(x_eval), twin(x_eval))


# The default suite compiles the smallest net and the one with every kind of layer; the slow suite the rest.
QUICK_NETS = ("simple", "lenet5-batch-norm")
NET_PARAMS = [net if net in QUICK_NETS else pytest.param(net, marks=pytest.mark.slow) for net in NETS]


@pytest.mark.parametrize("net", NET_PARAMS)
def test_compiles_with_no_graph_break_and_trains_and_evaluates_as_eager(impl_any, net):
    """fullgraph=True (which refuses any graph break) and dynamo's own count; two SGD steps through the
    compiled forward and its compiled backward reach eager's weights; in eval mode, under no_grad as
    evaluation runs, the compiled model gives eager's outputs. And the compiled graphs, forward and
    backward, hold no native op (test_no_native_ops' rule; native torch's own graphs are the control)."""
    model, twin = twins(impl_any, net)
    batches = [batch(net, 3, seed) for seed in range(3)]
    explanation = torch._dynamo.explain(copy.deepcopy(model))(batches[0][0])   # a copy: it runs the model
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons

    operators = set()
    compiled = torch.compile(model, fullgraph=True, backend=recording_aot_eager(operators))
    assert_trains_and_evaluates_as_eager(model, twin, compiled, batches[:2], batches[2][0])
    if impl_any == "torch":
        assert {"aten::convolution", "aten::convolution_backward"} <= set(forbidden(operators))
    else:
        assert operators and not forbidden(operators), forbidden(operators)
    if impl_any == "scalar":
        assert {"scalar_ops::conv2d_forward", "scalar_ops::conv2d_backward"} <= operators


@pytest.fixture(params=IMPLS, scope="session")
def impl_any(request):
    return request.param


@pytest.mark.parametrize("impl", ["vector", "scalar"])
def test_the_batch_size_is_dynamic(impl):
    """Three 'epochs' of batches 4, 4, 3 (the last one smaller), with the batch dimension marked dynamic:
    one compiled graph for training and one for eval, however many batch sizes follow."""
    model, _ = twins(impl, "simple")
    counter = CompileCounterWithBackend("aot_eager")
    compiled = torch.compile(model, fullgraph=True, backend=counter)
    epoch = [batch("simple", size, seed) for seed, size in enumerate((4, 4, 3))]
    for x, target in epoch:
        torch._dynamo.mark_dynamic(x, 0)
    for _ in range(3):
        train_steps(model, compiled, epoch)
    assert counter.frame_count == 1
    model.eval()
    with torch.no_grad():
        for x, _ in epoch:
            compiled(x)
    assert counter.frame_count == 2


@pytest.mark.parametrize("net", NET_PARAMS)
def test_export(impl_any, net):
    """torch.export of the eval model, the batch dimension dynamic: the program runs on another batch
    size and gives eager's outputs; the scalar kernels appear in it as their registered ops."""
    model, _ = twins(impl_any, net)
    model.eval()
    x, _ = batch(net, 4)
    program = torch.export.export(model, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},))
    other, _ = batch(net, 7, seed=1)
    assert_close("exported program's output", model(other), program.module()(other))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    ours = {target for target in targets if target.startswith("scalar_ops.")}
    assert bool(ours) == (impl_any == "scalar"), targets
    if impl_any == "scalar":
        assert "scalar_ops.conv2d_forward.default" in ours


def dynamo_complaints(run, monkeypatch, caplog) -> list[str]:
    """The warnings and log records (WARNING and up) that ``run()`` gives rise to and that name the project's code
    or an lru_cache (dynamo warns once per message per process: its record of those is emptied first)."""
    if hasattr(torch._dynamo.utils, "warn_once_cache"):
        monkeypatch.setattr(torch._dynamo.utils, "warn_once_cache", set())
    ours = ("vector_ops", "scalar_ops", "simple_conv_net", "lru_cache")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.WARNING):
        warnings.simplefilter("always")
        run()
    messages = [str(w.message) for w in caught] + [record.getMessage() for record in caplog.records]
    return [m for m in messages if any(word in m for word in ours)]


TRACING_NETS = ("lenet", "simple")


def trace_in_every_order(model, native, x, other):
    """Eager, FakeTensorMode, torch.export at one batch size and again at another, torch.compile, eager; forward and
    backward where a run computes gradients (eager, fake), eval mode for export and compile. Each real run is judged
    against native PyTorch (the compare core's rule)."""
    def forward_and_backward(net, x):
        net.train()
        with torch.enable_grad():
            x = x.clone().requires_grad_()
            output = net(x)
            (grad,) = torch.autograd.grad(output.square().sum(), x)
        net.eval()
        return output.detach(), grad

    def check(label, ours, x):
        ours = ours if isinstance(ours, tuple) else (ours,)
        truths = forward_and_backward(copy.deepcopy(native).double(), x.double())
        natives = forward_and_backward(native, x)
        for what, o, t, n in zip(("output", "input gradient"), ours, truths, natives):
            assert_close(f"{label}: {what}", t, o, n)

    check("eager", forward_and_backward(model, x), x)
    with FakeTensorMode(allow_non_fake_inputs=True) as fake:
        output, grad = forward_and_backward(model, fake.from_tensor(x))
        assert output.shape == (x.shape[0], 10) and grad.shape == x.shape
    with torch.no_grad():
        check("export", torch.export.export(model, (x,)).module()(x), x)
        check("export at another batch size", torch.export.export(model, (other,)).module()(other), other)
        check("compile", torch.compile(model, backend="aot_eager", fullgraph=True)(other), other)
    check("eager again", forward_and_backward(model, x), x)


@pytest.mark.parametrize("net", TRACING_NETS)
def test_index_caches_survive_tracing_in_any_order(net, monkeypatch, caplog):
    """vector_ops keeps index tensors in caches (window_origins and window_rows in max_pool2d's forward,
    source_positions in conv2d's input gradient). A tensor made while a tracer runs is fake or symbolic and
    must never be kept for a later run (it was: a second torch.export of vector LeNet failed on a fake tensor
    among its constants); eager runs share them. And dynamo, which warns where it traces an lru_cache, never
    meets one in the project's code."""
    model, _ = twins("vector", net)
    native = build_model(NETS[net][0], "torch", NETS[net][1])
    native.load_state_dict(model.state_dict())
    model.eval()
    x, other = batch(net, 4)[0], batch(net, 2, seed=1)[0]
    complaints = dynamo_complaints(lambda: trace_in_every_order(model, native, x, other), monkeypatch, caplog)
    assert not complaints, complaints


class Pool(torch.nn.Module):
    def forward(self, x):
        return vector_ops.max_pool2d(x, 2)


def test_a_plain_lru_cache_would_be_caught(monkeypatch, caplog):
    """The control: with functools.lru_cache in place of eager_cache, a second export fails (the issue's
    failure) and dynamo complains."""
    monkeypatch.setattr(vector_pool2d, "window_origins", functools.lru_cache(vector_pool2d.window_origins.__wrapped__))
    x = torch.randn(2, 3, 8, 8)
    torch.export.export(Pool(), (x,))
    with pytest.raises(Exception, match="fake tensor"):
        torch.export.export(Pool(), (x,))
    vector_pool2d.window_origins.cache_clear()
    torch._dynamo.reset()
    complaints = dynamo_complaints(lambda: torch.compile(Pool(), backend="aot_eager", fullgraph=True)(x), monkeypatch,
                                   caplog)
    assert any("lru_cache" in c for c in complaints), complaints


def test_inductor():
    """The real compiler on one small case: the scalar ops as extern calls of inductor's C++ code."""
    model, twin = twins("scalar", "simple")
    batches = [batch("simple", 3, seed) for seed in range(3)]
    assert_trains_and_evaluates_as_eager(model, twin, torch.compile(model, fullgraph=True), batches[:2], batches[2][0])


@pytest.mark.slow
@pytest.mark.parametrize("net", NETS)
def test_inductor_every_model(impl_any, net):
    """Inductor on every model and impl, training and eval, the batch size dynamic."""
    model, twin = twins(impl_any, net)
    batches = [batch(net, size, seed) for seed, size in enumerate((4, 3, 5))]
    assert_trains_and_evaluates_as_eager(model, twin, Compiled(model), batches[:2], batches[2][0])


def test_a_second_derivative_through_a_compiled_model_is_refused():
    """Eager refuses create_graph=True with its own message (test_ops); a compiled graph's backward
    refuses a second derivative too (torch.compile's own message), never giving a wrong one."""
    model, _ = twins("scalar", "simple")
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x, _ = batch("simple", 2)
    x.requires_grad_()
    (grad,) = torch.autograd.grad(compiled(x).square().sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward"):
        grad.sum().backward()


def test_train_py_compile_trains_as_eager_with_one_graph_for_every_batch_size(tmp_path, capsys):
    """train.py --compile: two epochs whose last batch is smaller (250 = 7 x 32 + 26) reach eager's weights,
    the checkpoint holds the model's own keys, and the graphs compiled stay 2 (training, testing)."""
    args = [*QUICK, "--train-samples", "250", "--impl", "scalar", "--epochs", "2"]
    assert train.main([*args, "--out", str(tmp_path / "eager")]) == 0
    capsys.readouterr()
    assert train.main([*args, "--out", str(tmp_path / "compiled"), "--compile"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("torch.compile:")]
    assert len(lines) == 2 and all(line.startswith("torch.compile: 2 graphs") for line in lines), lines
    eager, compiled = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in ("eager", "compiled"))
    assert set(compiled["model"]) == set(eager["model"])
    for name, value in compiled["model"].items():
        assert_close(name, eager["model"][name], value)


def test_benchmark_times_the_compiled_impls_beside_the_eager_ones(tmp_path, capsys):
    """benchmarks/epoch_timing.py --compile: a '+c' row per impl, timed in the same rounds, with its compile
    time (training and evaluation graphs) and its ratio to its own eager steps."""
    try:
        mnist = data.find_mnist()
    except data.MNISTNotFoundError as error:
        pytest.skip(f"MNIST not available: {error}")
    spec = importlib.util.spec_from_file_location("epoch_timing", SCRIPT)
    epoch_timing = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(epoch_timing)
    out = tmp_path / "timing.json"
    assert epoch_timing.main(["--impl", "scalar", "--compile", "--steps", "1", "--repeats", "1", "--layer-reps", "1",
                              "--inference-batches", "1", "--no-memory", "--data-dir", str(mnist),
                              "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "compile time, s" in printed and "scalar+c" in printed
    report = json.loads(out.read_text())
    assert report["config"]["impls"] == ["scalar", "scalar+c"] and report["config"]["compile"]
    (point,) = report["points"]
    compiled = point["impls"]["scalar+c"]
    assert positive(compiled["warmup"]["compile_s"]) and compiled["warmup"]["graphs"] == 1
    assert positive(compiled["train"]["ratio_to_eager"]) and compiled["train"]["ratio_to_torch"] is None
    assert compiled["layers"] is None and point["impls"]["scalar"]["layers"]
    assert positive(report["models"]["simple"]["inference"]["scalar+c"]["compile_s"])

"""The calls the checker makes of each function, in the order the schedule may run them.

Every call has a stage (:data:`schedule.STAGES`), and a form lists a function's calls stage by
stage: what establishes correctness cheaply first, then the graded shapes, more batch sizes,
gradients, timing. The schedule runs what fits the function's time budget, in that order
(:mod:`.schedule`); :func:`finish` gives every call what the schedule estimates from (its
family, batch size, work) and marks the two calls whose torch ops are recorded.

Handout form. Its functions take their sizes from their arguments, so each is first called on
small shapes with the homework's options (conv 2->3 5x5 on [N, 2, 9, 9], pool 2x2/2 on
[N, 3, 8, 8], reshape [N, 3, 4, 4], fc 12->5, relu on [N, 12]: well under a second even in
Python loops): random, negative and ties (pool) or exact zeros (relu) inputs, the same call
twice. Then the homework's shapes (conv 1->20 5x5 on [N, 1, 28, 28]; pool on [N, 20, 24, 24];
reshape [N, 20, 12, 12]; fc 2880->500 and 500->10; relu on [N, 500]), which decide the verdict:
the same cases, then real MNIST images passed through the native layers up to this one, at the
detailed batch (``Settings.detail``: 4 for vector functions, 2 for scalar ones), then the other
batch sizes (``batch_sizes`` 1, 4, 64; ``scalar_batch_sizes`` 1, 2); then, with inputs that
require grad, the small shapes and the homework's; then (vector functions) MNIST at the largest
batch timed against native, forward + backward, ``speed_repeats`` times. Scalar functions
(maybe Python loops) are forward passes (task 1): their one gradient call, on small shapes, is
for a note, and their MNIST calls are timed once. A small call names its ``mirror``, the call
of the same case at the homework's shapes: a function wrong on the small shapes but right on
the homework's hard-codes the homework's sizes (see analysis).

Functional form: a table of shapes, strides and paddings like the parity suite's, each case
once plain and once with grad, one case in float64, one repeated; then the arguments newer
signatures have (dilation, groups, 'same' padding, ceil_mode, return_indices, class weights,
ignore_index, a K-dimensional loss, log_softmax's dtype: see forms.functional for how a function
without them is judged), on small shapes; then SimpleConvNet's shapes, random at the detailed
batch and MNIST at the largest, timed. Inputs come from seeded generators, weights from native
SimpleConvNet built with the seed, so every run of the checker asks the same questions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace

import torch

from .. import data
from ..model import SimpleConvNet
from .forms import OPS, Function, native_call
from .text import pair


@dataclass(frozen=True)
class Settings:
    """What to run; the defaults are the command line's."""

    batch_sizes: tuple = (1, 4, 64)
    scalar_batch_sizes: tuple = (1, 2)
    speed_repeats: int = 5
    seed: int = 0
    data_dir: str | None = None
    train_steps: int = 200
    test_samples: int = 1000
    strict: bool = False          # --strict: the general cases of the forms that have them decide too

    @staticmethod
    def detail(sizes: tuple) -> int:
        """The batch of the detailed checks: the smallest above 1 (several samples, so mixing them up shows)."""
        return min([n for n in sizes if n > 1] or sizes)

    @property
    def small(self) -> int:
        return self.detail(self.batch_sizes)

    @property
    def large(self) -> int:
        return max(self.batch_sizes)


@dataclass
class Call:
    """One call of a candidate function; ``inputs`` and ``options`` are also what native PyTorch gets."""

    label: str
    case: str                       # random, mnist, negative, ties, zeros, repeat, float64, speed or a table case
    op: str
    inputs: dict                    # name -> tensor (or None), in the op's order
    options: dict = field(default_factory=dict)
    args: tuple = ()                # the candidate's positional arguments: {"ref": name} or a value
    kwargs: dict = field(default_factory=dict)
    grad: tuple = ()                # inputs that require grad in this call
    grad_output: torch.Tensor | None = None
    repeat: int = 1
    timed: bool = False             # time native PyTorch alongside
    twin: str | None = None         # the label of the call this one repeats
    updates: tuple = ()             # inputs the op is meant to change in place (batch norm's running statistics)
    layer: str | None = None        # the SimpleConvNet layer this call's timing stands for
    device: str = "cpu"             # where the candidate gets the inputs
    watch: bool = False             # record the torch functions and ATen operators it runs (see watch)
    stage: str = "graded"           # its priority: one of schedule.STAGES
    shapes: str = "graded"          # "small": shapes the checker chose to test cheaply; "graded": the form's own
    mirror: str | None = None       # a small call: the label of its case at the graded shapes (see analysis)
    # What the schedule estimates from (see finish): calls of one family differ only in the batch size n.
    family: str = ""
    forward_family: str | None = None   # a call with grad: the family of the same call without
    n: int = 1
    work: float = 0.0               # multiply-adds of the op on these inputs
    entries: float = 0.0            # entries of its output
    size_text: str = ""             # the shapes in words: [20, 24, 24] or 2880->500

    def request(self) -> dict:
        """What the child needs (runner.run_call), as plain data."""
        return {"label": self.label, "op": self.op, "inputs": self.inputs, "options": self.options,
                "args": list(self.args), "kwargs": self.kwargs, "grad": list(self.grad),
                "grad_output": self.grad_output, "repeat": self.repeat, "timed": self.timed, "device": self.device,
                "watch": self.watch}


def ref(name: str) -> dict:
    return {"ref": name}


def watch(calls: list[Call]) -> list[Call]:
    """The calls with the first plain one and the first with grad watched (the from-scratch check's record
    of what they run). What a function runs does not change from call to call, and watching makes a call
    of many small ops about three times slower, so only these two are watched, never a timed one."""
    firsts = {}
    for index, call in enumerate(calls):
        if not call.timed:
            firsts.setdefault(bool(call.grad), index)
    return [replace(call, watch=True) if index in firsts.values() else call for index, call in enumerate(calls)]


def _window(op: str, inputs: dict, options: dict) -> int:
    """Multiply-adds of one output entry."""
    if op == "conv2d":
        return inputs["weight"][0].numel()
    if op == "linear":
        return inputs["weight"].shape[-1]
    if op == "max_pool2d":
        kernel = pair(options["kernel_size"])
        return kernel[0] * kernel[1]
    return 1


def sized(call: Call) -> Call:
    """The call with what the schedule estimates from: its family (op, shapes after the batch dimension,
    options, grad), batch size, work and entries (from native's output shape, computed on copies of its inputs:
    on meta tensors, relu, log_softmax, nll_loss and batch_norm import torch._dynamo, seconds of the check's
    start)."""
    x = next((t for t in call.inputs.values() if t is not None), None)
    n = x.shape[0] if x is not None and x.dim() >= 2 else 1
    shapes = [None if t is None else list(t.shape[1:] if name == "input" and t.dim() >= 2 else t.shape)
              for name, t in call.inputs.items()]
    base = f"{call.op} {shapes} {sorted(call.options.items(), key=str)} {call.device}"
    copies = {k: None if v is None else v.clone() for k, v in call.inputs.items()}
    try:
        with torch.no_grad():
            entries = native_call(call.op, copies, call.options).numel()
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        entries = x.numel() if x is not None else 1
    if call.op == "linear":
        size = f"{call.inputs['weight'].shape[-1]}->{call.inputs['weight'].shape[0]}"
    else:
        size = str(shapes[0]) if shapes and shapes[0] is not None else ""
    return replace(call, family=base + (" grad" if call.grad else ""), forward_family=base if call.grad else None,
                   n=n, work=float(entries * _window(call.op, call.inputs, call.options)), entries=float(entries),
                   size_text=size)


def finish(calls: list[Call]) -> list[Call]:
    """The calls as the schedule takes them: sized, two of them watched."""
    return watch([sized(call) for call in calls])


# ----------------------------------------------------------------------------- shared material


@dataclass
class Material:
    """The weights every plan uses, and real MNIST images with native SimpleConvNet's intermediates."""

    weights: dict                   # conv, fc1, fc2 -> (weight, bias)
    mnist: dict | None              # layer input name -> tensor [large, ...], plus "labels"
    note: str | None = None         # why there is no MNIST, and every place the checker looked
    state: dict = field(default_factory=dict)   # the native net's state_dict (training starts from it)
    missing: str | None = None      # why there is no MNIST in one line, with what to do


def material(settings: Settings) -> Material:
    torch.manual_seed(settings.seed)
    net = SimpleConvNet("torch")
    weights = {name: (layer.weight.detach().clone(), layer.bias.detach().clone())
               for name, layer in (("conv", net.conv_layer), ("fc1", net.fc_layer1), ("fc2", net.fc_layer2))}
    state = {key: value.detach().clone() for key, value in net.state_dict().items()}
    try:
        images, labels = data.load_mnist("test", settings.data_dir)
    except (data.MNISTNotFoundError, data.MNISTFormatError) as error:
        advice = mnist_advice(error, settings.data_dir)
        places = "; ".join(" ".join(line.split()) for line in str(error).splitlines() if line.startswith("  "))
        return Material(weights, None, f"no MNIST, so no checks on real images and no training: {advice}"
                                       + (f"; looked in {places}" if places else ""), state, missing=advice)
    images, labels = images[:settings.large], labels[:settings.large]
    with torch.no_grad():
        _, z = net(images, return_intermediates=True)
    mnist = {"conv": images, "pool": z["conv"], "reshape": z["pool"], "fc1": z["reshape"], "relu": z["fc1"],
             "fc2": z["relu"], "output": z["fc2"], "loss": z["output"], "labels": labels}
    return Material(weights, {k: v.detach().clone() for k, v in mnist.items()}, state=state)


def mnist_advice(error: Exception, data_dir) -> str:
    """Missing or broken MNIST files in one line (data's full message, every place it looked, is in the report's
    notes), with the checker's own advice: it has no --download of its own."""
    where, how = data.given_data_dir(data_dir)
    looked = f"in {where} ({how})" if where else "in the default locations"
    what = "not found" if isinstance(error, data.MNISTNotFoundError) else \
        f"unreadable ({str(error).splitlines()[0][:200]})"
    return (f"MNIST files {what} {looked}: point --data-dir (or $SIMPLE_CONV_NET_DATA) at the folder holding the four "
            f"MNIST files (`python train.py --download --data-dir DIR` fetches them)")


class Draw:
    """Seeded random tensors: every plan built with the same seed asks the same questions."""

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(seed)

    def normal(self, *shape, dtype=torch.float32) -> torch.Tensor:
        return torch.randn(tuple(shape), generator=self.generator, dtype=dtype)

    def variant(self, case: str, *shape) -> torch.Tensor:
        """random: normal; negative: -|normal|; ties: integers 0..2 (max pooling ties); zeros: normal with every
        third entry exactly 0 (ReLU's kink)."""
        x = self.normal(*shape)
        if case == "negative":
            return -x.abs() - 0.01
        if case == "ties":
            return torch.randint(0, 3, shape, generator=self.generator).to(torch.float32)
        if case == "zeros":
            x.view(-1)[::3] = 0.0
        return x


def _grad_output(call: Call, draw: Draw) -> torch.Tensor:
    with torch.no_grad():
        expected = native_call(call.op, {k: None if v is None else v.clone() for k, v in call.inputs.items()},
                               call.options)
    return draw.normal(*expected.shape, dtype=expected.dtype)


def _with_grad(call: Call, draw: Draw, label: str | None = None, **changes) -> Call:
    """The same call with every differentiable input requiring grad, and an upstream gradient."""
    grad = tuple(n for n in OPS[call.op].differentiable if call.inputs.get(n) is not None)
    new = replace(call, label=label or f"{call.label} (grad)", grad=grad, **changes)
    new.grad_output = _grad_output(new, draw)
    return new


def _repeat(call: Call) -> Call:
    """The same call again, on the same inputs: two calls must give the same output."""
    return replace(call, label=f"repeat {call.label}", case="repeat", twin=call.label)


def _on_cuda(calls: list[Call]) -> list[Call]:
    """The call on a CUDA device (inputs there, and the handout's device argument 'cuda'), when there is one."""
    if not torch.cuda.is_available():
        return []
    call = calls[0]
    args = tuple("cuda" if arg == "cpu" else arg for arg in call.args)
    return [replace(call, label=f"cuda {call.label}", case="cuda", device="cuda", args=args)]


# ----------------------------------------------------------------------------- the handout's form

# Each layer of SimpleConvNet: its op, input shape after N, options, weights key.
LAYERS = {
    "conv": ("conv2d", (1, 28, 28), {}, "conv"),
    "pool": ("max_pool2d", (20, 24, 24), {"kernel_size": 2, "stride": 2}, None),
    "reshape": ("flatten", (20, 12, 12), {"start_dim": 1}, None),
    "fc1": ("linear", (2880,), {}, "fc1"),
    "relu": ("relu", (500,), {}, None),
    "fc2": ("linear", (500,), {}, "fc2"),
}


# Small shapes of each op, with the homework's options: (input after N, weight or None).
SMALL = {
    "conv2d": ((2, 9, 9), (3, 2, 5, 5)),
    "max_pool2d": ((3, 8, 8), None),
    "flatten": ((3, 4, 4), None),
    "linear": ((12,), (5, 12)),
    "relu": ((12,), None),
}


def _inputs(x: torch.Tensor, weights: tuple | None) -> dict:
    inputs = {"input": x}
    if weights:
        inputs["weight"], inputs["bias"] = (t.clone() for t in weights)
    return inputs


def _layer_call(layer: str, case: str, n: int, stuff: Material, draw: Draw, with_device: bool) -> Call:
    """A call of one SimpleConvNet layer's function on ``n`` inputs of ``case`` (see Draw.variant, or mnist)."""
    op, shape, options, weights = LAYERS[layer]
    x = stuff.mnist[layer][:n].clone() if case == "mnist" else draw.variant(case, n, *shape)
    inputs = _inputs(x, weights and stuff.weights[weights])
    suffix = f" ({shape[0]}->{stuff.weights[weights][0].shape[0]})" if op == "linear" else ""
    args = tuple(ref(name) for name in inputs) + (("cpu",) if with_device else ())
    return Call(f"{case} N={n}{suffix}", case, op, inputs, dict(options), args, layer=layer)


def _small_call(op: str, case: str, n: int, draw: Draw, with_device: bool) -> Call:
    """A call of one of the homework's layer functions on small shapes (SMALL), at the homework's options."""
    shape, weight = SMALL[op]
    options = next(options for layer_op, _, options, _ in LAYERS.values() if layer_op == op)
    weights = weight and (draw.normal(*weight), draw.normal(weight[0]))
    inputs = _inputs(draw.variant(case, n, *shape), weights)
    args = tuple(ref(name) for name in inputs) + (("cpu",) if with_device else ())
    return Call(f"small {case} N={n}", case, op, inputs, dict(options), args, stage="small", shapes="small")


def handout_calls(function: Function, settings: Settings, stuff: Material, with_device: bool = True) -> list[Call]:
    """The calls for one of the homework's five layer functions, stage by stage (see the module doc)."""
    draw = Draw(settings.seed)
    layers = MNIST_LAYERS[function.op]
    sizes = settings.scalar_batch_sizes if function.scalar else settings.batch_sizes
    n, least, large = settings.detail(sizes), min(sizes), max(sizes)
    first = layers[-1] if function.scalar else layers[0]     # fc: Python loops do most of their work at 2880->500
    others = [layer for layer in layers if layer != first]
    kink = {"max_pool2d": "ties", "relu": "zeros"}.get(function.op)
    cases = ["random", "negative", *([kink] if kink else [])]
    source = "random" if stuff.mnist is None else "mnist"   # timed on real images where there are some

    def make(layer, case, size, stage, **changes):
        return replace(_layer_call(layer, case, size, stuff, draw, with_device), stage=stage, **changes)

    small = [_small_call(function.op, case, n, draw, with_device) for case in cases]
    graded = [make(first, case, n, "graded") for case in cases]
    for call, twin in zip(small, graded):
        call.mirror = twin.label
    repeats = [_repeat(small[0]), _repeat(graded[0])]
    repeats[0].mirror = repeats[1].label
    timed = function.scalar and source == "mnist"
    calls = [*small, repeats[0], *graded, repeats[1]]
    calls += [make(layer, "mnist", n if layer == first or not function.scalar else least, "graded", timed=timed)
              for layer in layers] if source == "mnist" else []
    calls += [make(first, "random", size, "sizes") for size in sizes if size != n]
    calls += [make(layer, "random", n, "sizes") for layer in others]
    calls += [make(first, "mnist", large, "sizes") for _ in [source] if source == "mnist" and not function.scalar]
    calls += [replace(call, stage="sizes") for call in _on_cuda([graded[0]])]
    grads = [_with_grad(small[0], draw)] + ([] if function.scalar else [_with_grad(c, draw) for c in graded
                                                                         if c.case != "negative"])
    grads[0].mirror = None if function.scalar else grads[1].label
    calls += [replace(call, stage="gradients") for call in grads]
    if not function.scalar:
        bases = [make(layer, source, large, "timing") for layer in layers]
        calls += [_with_grad(c, draw, f"speed {c.label}", case="speed", repeat=settings.speed_repeats, timed=True)
                  for c in bases]
    elif source == "random":
        bases = [make(layer, source, least, "timing") for layer in layers]
        calls += [replace(c, label=f"speed {c.label}", case="speed", timed=True) for c in bases]
    return calls


def diff_mse_calls(settings: Settings) -> list[Call]:
    draw = Draw(settings.seed)
    shapes = {"random": (4, 10), "layer-sized": (settings.large, 20, 24, 24)}
    calls = [Call(f"{name} {list(shape)}", "random", "diff_mse",
                  {"x": draw.normal(*shape), "y": draw.normal(*shape)}) for name, shape in shapes.items()]
    same = draw.normal(3, 5)
    calls.append(Call("identical tensors", "random", "diff_mse", {"x": same, "y": same.clone()}))
    for call in calls:
        call.args = (ref("x"), ref("y"))
    return calls


def conv_weight2rows_calls(settings: Settings, stuff: Material) -> list[Call]:
    weight = stuff.weights["conv"][0].clone()
    draw = Draw(settings.seed)
    return [Call("conv weight [20, 1, 5, 5]", "random", "conv_weight2rows", {"weight": weight}, args=(ref("weight"),)),
            Call("random [4, 3, 3, 2]", "random", "conv_weight2rows", {"weight": draw.normal(4, 3, 3, 2)},
                 args=(ref("weight"),))]


# Parameter names the checker understands for im2col, and what it passes for each ("K": the kernel size).
IM2COL_PARAMETERS = {"kernel_size": "K", "kernel": "K", "k": "K", "ksize": "K", "size": "K", "stride": 1,
                     "padding": 0, "pad": 0, "device": "cpu"}


def im2col_calls(settings: Settings, parameters: list | None) -> tuple[list[Call], str | None]:
    """Calls for im2col, whose arguments students change: the images first, then the parameters it
    requires, by name (kernel size, stride, padding, device); ([], why) when it cannot be called."""
    positional = [(name, has_default) for name, kind, has_default in parameters or ()
                  if kind in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")]
    required = [name for name, has_default in positional[1:] if not has_default]
    unknown = [name for name in required if name.lower() not in IM2COL_PARAMETERS]
    if not positional or unknown:
        return [], (f"the checker passes the images, then only {', '.join(IM2COL_PARAMETERS)} by name; "
                    f"it cannot fill {', '.join(unknown) or 'an empty parameter list'}")
    draw = Draw(settings.seed)
    calls = []
    for label, x, k in (("images [2, 1, 28, 28] K=5", draw.normal(2, 1, 28, 28), 5),
                        ("channels [2, 3, 7, 7] K=3", draw.normal(2, 3, 7, 7), 3),
                        ("one image [1, 28, 28] K=5", draw.normal(1, 28, 28), 5)):
        values = [k if IM2COL_PARAMETERS[name.lower()] == "K" else IM2COL_PARAMETERS[name.lower()]
                  for name in required]
        calls.append(Call(label, "random", "im2col", {"input": x}, {"kernel_size": k}, args=(ref("input"), *values)))
    return calls, None


# ----------------------------------------------------------------------------- the functional form


def _native_style(call: Call, defaults: dict) -> Call:
    """Arguments as torch.nn.functional takes them: the tensors positionally (None only before another
    tensor), the options by keyword, except those left at the default. A tensor an older signature lacks
    (nll_loss's class weights) goes by keyword too, so that a call without it binds as it always did."""
    keyword = BY_KEYWORD.get(call.op, ())
    names = [n for n in OPS[call.op].inputs if n not in keyword]
    while names and call.inputs.get(names[-1]) is None:
        names.pop()
    call.args = tuple(None if call.inputs.get(n) is None else ref(n) for n in names)
    call.kwargs = {**{k: v for k, v in call.options.items() if k not in defaults or defaults[k] != v},
                   **{n: ref(n) for n in keyword if call.inputs.get(n) is not None}}
    return call


DEFAULTS = {
    "conv2d": {"stride": 1, "padding": 0, "dilation": 1, "groups": 1},
    "max_pool2d": {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False},
    "flatten": {"start_dim": 0, "end_dim": -1},
    "nll_loss": {"ignore_index": -100, "reduction": "mean"},
    "batch_norm": {"training": False, "momentum": 0.1, "eps": 1e-5},
    "relu": {}, "linear": {}, "log_softmax": {"dtype": None},
}
BY_KEYWORD = {"nll_loss": ("weight",)}


def _functional_table(draw: Draw) -> dict:
    """op -> [(label, inputs, options)]: shapes, strides and paddings like the parity suite's."""
    def conv(n, c_in, h, w, c_out, k_h, k_w, stride=1, padding=0, bias=True):
        return ({"input": draw.normal(n, c_in, h, w), "weight": draw.normal(c_out, c_in, k_h, k_w),
                 "bias": draw.normal(c_out) if bias else None}, {"stride": stride, "padding": padding})

    def pool(n, c, h, w, kernel_size, stride=None, padding=0, case="random"):
        return {"input": draw.variant(case, n, c, h, w)}, {"kernel_size": kernel_size, "stride": stride,
                                                            "padding": padding}

    def linear(shape, out_features, bias=True):
        return ({"input": draw.normal(*shape), "weight": draw.normal(out_features, shape[-1]),
                 "bias": draw.normal(out_features) if bias else None}, {})

    def nll(n, classes, reduction):
        logits = draw.normal(n, classes).log_softmax(1)
        return ({"input": logits, "target": torch.randint(0, classes, (n,), generator=draw.generator)},
                {"reduction": reduction})

    def batch_norm(shape, training, stats=True, affine=True, momentum=0.1, eps=1e-5):
        c = shape[1]
        inputs = {"input": draw.normal(*shape) * 2 + 0.5,
                  "running_mean": draw.normal(c) if stats else None,
                  "running_var": draw.normal(c).abs() + 0.5 if stats else None,
                  "weight": draw.normal(c) if affine else None, "bias": draw.normal(c) if affine else None}
        return inputs, {"training": training, "momentum": momentum, "eps": eps}

    return {
        "conv2d": [
            ("simple-net N=2", *conv(2, 1, 28, 28, 20, 5, 5)),
            ("non-square N=2", *conv(2, 2, 9, 7, 3, 3, 2)),
            ("stride2-pad1-cin3 N=1", *conv(1, 3, 8, 8, 4, 3, 3, 2, 1)),
            ("stride3-pad2 N=2", *conv(2, 3, 10, 11, 2, 4, 3, 3, 2)),
            ("pair-stride-padding N=2", *conv(2, 2, 7, 9, 3, 2, 3, (2, 1), (1, 2))),
            ("kernel-equals-padded-input N=2", *conv(2, 2, 5, 4, 3, 7, 6, 1, 1)),
            ("1x1-kernel N=3", *conv(3, 4, 5, 6, 2, 1, 1)),
            ("no-bias N=2", *conv(2, 3, 6, 6, 3, 3, 3, bias=False)),
            ("cin-equals-cout N=3", *conv(3, 3, 7, 7, 3, 3, 3)),
        ],
        "max_pool2d": [
            ("simple-net N=2", *pool(2, 3, 24, 24, 2)),
            ("overlap N=2", *pool(2, 2, 7, 9, 3, 2, 1)),
            ("non-square-kernel N=1", *pool(1, 2, 8, 7, (3, 2), (1, 2), (1, 1))),
            ("stride3 N=2", *pool(2, 1, 10, 10, 2, 3, 1)),
            ("ties N=2", *pool(2, 2, 8, 8, 2, 2, 0, case="ties")),
            ("negative N=2", *pool(2, 3, 6, 6, 2, 2, 0, case="negative")),
            ("stride-default N=3", *pool(3, 2, 9, 9, 3)),
        ],
        "relu": [
            ("[4, 7] N=4", {"input": draw.normal(4, 7)}, {}),
            ("[2, 3, 5, 5] N=2", {"input": draw.normal(2, 3, 5, 5)}, {}),
            ("zeros N=3", {"input": draw.variant("zeros", 3, 8)}, {}),
            ("negative N=2", {"input": draw.variant("negative", 2, 6)}, {}),
        ],
        "linear": [
            ("[4, 7]->3 N=4", *linear((4, 7), 3)),
            ("[3, 2880]->500 N=3", *linear((3, 2880), 500)),
            ("[2, 3, 5]->4 N=2", *linear((2, 3, 5), 4)),
            ("no-bias [5, 6]->2 N=5", *linear((5, 6), 2, bias=False)),
            ("square [4, 6]->6 N=4", *linear((4, 6), 6)),
            ("1-D [6]->3", *linear((6,), 3)),
        ],
        "flatten": [
            ("[2, 3, 4, 5] dims 1..-1 N=2", {"input": draw.normal(2, 3, 4, 5)}, {"start_dim": 1, "end_dim": -1}),
            ("[2, 3, 4, 5] dims 0..2 N=2", {"input": draw.normal(2, 3, 4, 5)}, {"start_dim": 0, "end_dim": 2}),
            ("[2, 3, 4] dims 2..2 N=2", {"input": draw.normal(2, 3, 4)}, {"start_dim": 2, "end_dim": 2}),
            ("[2, 3, 4, 5] dims -3..-2 N=2", {"input": draw.normal(2, 3, 4, 5)}, {"start_dim": -3, "end_dim": -2}),
        ],
        "log_softmax": [
            ("[4, 10] dim 1 N=4", {"input": draw.normal(4, 10)}, {"dim": 1}),
            ("[2, 3, 4] dim 0 N=2", {"input": draw.normal(2, 3, 4)}, {"dim": 0}),
            ("large values [3, 5] dim -1 N=3", {"input": draw.normal(3, 5) * 1000}, {"dim": -1}),
        ],
        "nll_loss": [
            ("mean N=4", *nll(4, 10, "mean")),
            ("sum N=4", *nll(4, 10, "sum")),
            ("none N=5", *nll(5, 3, "none")),
            ("mean N=1", *nll(1, 7, "mean")),
        ],
        "batch_norm": [
            ("training [4, 3, 5, 5] N=4", *batch_norm((4, 3, 5, 5), True)),
            ("eval [4, 3, 5, 5] N=4", *batch_norm((4, 3, 5, 5), False)),
            ("training no affine [8, 4] N=8", *batch_norm((8, 4), True, affine=False, momentum=0.3)),
            ("training no running stats [3, 2, 4] N=3", *batch_norm((3, 2, 4), True, stats=False, eps=1e-3)),
        ],
    }


def _options_table(draw: Draw) -> dict:
    """op -> [(label, inputs, options)]: the arguments torch.nn.functional has beyond the old signatures
    (forms.functional.extensions): dilation, groups and 'same' / 'valid' padding; dilation, ceil_mode and
    return_indices (in the options here: functional_calls passes it to the candidate alone); class weights,
    ignore_index and a K-dimensional input; log_softmax's dtype. Small shapes, a few milliseconds each."""
    def conv(n, c_in, h, w, c_out, kernel, stride=1, padding=0, dilation=1, groups=1):
        k_h, k_w = pair(kernel)
        return ({"input": draw.normal(n, c_in, h, w), "weight": draw.normal(c_out, c_in // groups, k_h, k_w),
                 "bias": draw.normal(c_out)}, {"stride": stride, "padding": padding, "dilation": dilation,
                                               "groups": groups})

    def pool(n, c, h, w, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        return {"input": draw.normal(n, c, h, w)}, {"kernel_size": kernel_size, "stride": stride, "padding": padding,
                                                    "dilation": dilation, "ceil_mode": ceil_mode,
                                                    "return_indices": return_indices}

    def nll(shape, weight=False, ignore_index=-100, reduction="mean"):
        n, classes, *rest = shape
        inputs = {"input": draw.normal(*shape).log_softmax(1),
                  "target": torch.randint(0, classes, (n, *rest), generator=draw.generator)}
        if ignore_index >= 0:
            inputs["target"].view(-1)[::3] = ignore_index      # every third target ignored, not all
        if weight:
            inputs["weight"] = draw.normal(classes).abs() + 0.1
        return inputs, {"ignore_index": ignore_index, "reduction": reduction}

    return {
        "conv2d": [
            ("dilation2 N=2", *conv(2, 2, 9, 8, 3, 3, dilation=2)),
            ("dilation-pair-stride2-pad1 N=1", *conv(1, 2, 10, 11, 3, (3, 2), 2, 1, dilation=(2, 3))),
            ("groups2 N=2", *conv(2, 4, 7, 6, 6, 3, groups=2)),
            ("depthwise-pad1 N=2", *conv(2, 3, 6, 6, 3, 3, padding=1, groups=3)),
            ("groups2-dilation2 N=1", *conv(1, 4, 9, 9, 4, 3, dilation=2, groups=2)),
            ("same-even-kernel N=2", *conv(2, 2, 7, 6, 3, (3, 4), padding="same")),
            ("same-dilation2 N=1", *conv(1, 3, 8, 8, 2, 3, padding="same", dilation=2)),
            ("valid N=2", *conv(2, 2, 6, 7, 3, 3, padding="valid")),
        ],
        "max_pool2d": [
            ("dilation2 N=2", *pool(2, 2, 9, 9, 3, 2, 1, dilation=2)),
            ("ceil-mode N=2", *pool(2, 2, 8, 8, 3, 2, ceil_mode=True)),
            ("ceil-mode-pad1-non-square N=1", *pool(1, 3, 7, 10, (2, 3), 2, 1, ceil_mode=True)),
            ("dilation-pair-ceil-mode N=1", *pool(1, 2, 9, 10, (2, 3), 2, 1, dilation=(2, 1), ceil_mode=True)),
            ("return-indices N=2", *pool(2, 3, 6, 6, 2, return_indices=True)),
            ("return-indices-dilation2-ceil-mode N=2", *pool(2, 2, 9, 8, 3, 2, 1, dilation=2, ceil_mode=True,
                                                             return_indices=True)),
        ],
        "log_softmax": [
            ("dtype float64 [4, 6] dim 1 N=4", {"input": draw.normal(4, 6)}, {"dim": 1, "dtype": torch.float64}),
            ("dtype float64 [2, 3, 5] dim -1 N=2", {"input": draw.normal(2, 3, 5)},
             {"dim": -1, "dtype": torch.float64}),
        ],
        "nll_loss": [
            ("weight mean N=5", *nll((5, 4), weight=True)),
            ("weight sum N=4", *nll((4, 3), weight=True, reduction="sum")),
            ("ignore_index mean N=6", *nll((6, 4), ignore_index=1)),
            ("weight ignore_index none N=5", *nll((5, 3), weight=True, ignore_index=0, reduction="none")),
            ("K-dimensional [2, 3, 4, 5] mean N=2", *nll((2, 3, 4, 5))),
            ("K-dimensional weight ignore_index sum N=2", *nll((2, 4, 3, 2), weight=True, ignore_index=2,
                                                              reduction="sum")),
        ],
    }


# Native PyTorch's note that its 'same' convolution with an even kernel copies the input (same-even-kernel above):
# about native's own speed when it is the oracle, nothing a candidate did.
warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths", category=UserWarning)

# The layers of SimpleConvNet each op serves, where it is timed.
MNIST_LAYERS = {"conv2d": ("conv",), "max_pool2d": ("pool",), "flatten": ("reshape",), "linear": ("fc1", "fc2"),
                "relu": ("relu",), "log_softmax": ("output",), "nll_loss": ("loss",)}


def _simple_net_inputs(op: str, layer: str, stuff: Material, draw: Draw, n: int, source: str) -> tuple[dict, dict]:
    """The input SimpleConvNet's ``layer`` gets (native's, from MNIST images, or random), its weights or the
    labels, and the op's options there."""
    if source == "mnist":
        x, labels = stuff.mnist[layer][:n].clone(), stuff.mnist["labels"][:n].clone()
    else:
        x = draw.normal(n, *(LAYERS[layer][1] if layer in LAYERS else (10,)))
        x = x.log_softmax(1) if layer == "loss" else x
        labels = torch.randint(0, 10, (n,), generator=draw.generator)
    inputs = {"input": x}
    if layer in LAYERS and LAYERS[layer][3]:
        inputs["weight"], inputs["bias"] = (t.clone() for t in stuff.weights[LAYERS[layer][3]])
    if op == "nll_loss":
        inputs["target"] = labels
    options = {**DEFAULTS[op], **(LAYERS[layer][2] if layer in LAYERS else {}), **({"dim": 1} if op == "log_softmax"
                                                                                 else {})}
    return inputs, options


def functional_calls(function: Function, settings: Settings, stuff: Material) -> list[Call]:
    """The calls for one op of the functional form, stage by stage (see the module doc): the table's cases,
    the cheapest first."""
    draw, options_draw = Draw(settings.seed), Draw(settings.seed + 1)
    op, defaults = function.op, DEFAULTS[function.op]

    def table(cases) -> list[Call]:
        found = []
        for label, inputs, options in cases:
            updates = ("running_mean", "running_var") if op == "batch_norm" and options["training"] and \
                inputs["running_mean"] is not None else ()
            indices = options.pop("return_indices", False)   # the candidate's alone: native's options give the values
            call = _native_style(Call(label, "table", op, inputs, options, updates=updates), defaults)
            call.kwargs.update({"return_indices": True} if indices else {})
            found.append(call)
        return sorted(found, key=lambda call: sum(t.numel() for t in call.inputs.values() if t is not None))

    plain = table(_functional_table(draw)[op])
    first = plain[0]
    double = {k: v.double() if v is not None and v.is_floating_point() else v for k, v in first.inputs.items()}
    plain += [replace(first, label=f"float64 {first.label}", case="float64", inputs=double), _repeat(first)]
    # The newer arguments' cases after the old ones, from their own generator: the old calls, those watched for
    # the from-scratch check among them, stay what they were, which decides for a signature without the new ones.
    extended = table(_options_table(options_draw).get(op, ()))
    source = "random" if stuff.mnist is None else "mnist"

    def simple_net(layer, case, n, stage):
        inputs, options = _simple_net_inputs(op, layer, stuff, draw, n, case)
        return replace(_native_style(Call(f"{case} {layer} N={n}", case, op, inputs, options, layer=layer), defaults),
                       stage=stage)

    layers = MNIST_LAYERS.get(op, ())
    calls = plain + extended + [simple_net(layer, "random", settings.small, "graded") for layer in layers]
    calls += [replace(call, stage="sizes") for call in _on_cuda([first])]
    calls += [simple_net(layer, "mnist", settings.large, "sizes") for layer in layers if source == "mnist"]
    if OPS[op].differentiable:
        calls += [replace(_with_grad(c, draw), stage="gradients") for c in plain if c.case != "repeat"]
        calls += [replace(_with_grad(c, options_draw), stage="gradients") for c in extended]
    calls += [_with_grad(simple_net(layer, source, settings.large, "timing"), draw,
                         f"speed {source} {layer} N={settings.large}", case="speed", repeat=settings.speed_repeats,
                         timed=True) for layer in layers]
    return calls

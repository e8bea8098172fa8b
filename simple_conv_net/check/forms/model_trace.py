"""What a candidate model's forward runs, layer by layer (the model form's recorder, run in the child).

Two recorders together see a forward as a sequence of *events*, each a layer the handout's
architecture is made of (see :mod:`.architecture`):

- forward hooks on every module of torch.nn inside the model (a Conv2d, a ReLU, an AvgPool2d...):
  one event per call, named by the module's path (``conv1``, ``features.0``);
- a TorchFunctionMode for the torch functions the candidate's *own* code calls (F.relu,
  torch.max_pool2d, x.view, x.permute...), that is, outside any torch.nn module's forward (what a
  module runs inside is its own business).

Every event keeps its output (a detached copy) for the parent to compare with the reference model's
layers, and a convolution's or linear layer's weight and bias, for copying them into it. The names
of the functions the candidate's code called are the forward's APIs (the handout allows torch.nn's
alone).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

MAX_EVENTS = 64
_KINDS = {"Conv2d": "conv", "Linear": "linear", "MaxPool2d": "maxpool", "AvgPool2d": "avgpool", "ReLU": "relu",
          "Flatten": "flatten", "Softmax": "softmax", "LogSoftmax": "softmax"}
_FUNCTION_KINDS = {"conv2d": "conv", "linear": "linear", "max_pool2d": "maxpool", "avg_pool2d": "avgpool",
                   "relu": "relu", "relu_": "relu", "softmax": "softmax", "log_softmax": "softmax",
                   "flatten": "flatten", "view": "flatten", "reshape": "flatten", "permute": "reorder",
                   "transpose": "reorder", "movedim": "reorder"}
# Tensor methods that only look at a tensor: not APIs worth reporting.
_INSPECTION = {"size", "dim", "numel", "shape", "is_contiguous", "contiguous"}


def _pair_text(value) -> str:
    value = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    return str(value[0]) if len(set(value)) == 1 else str(value)


def module_text(module: nn.Module) -> str:
    """A module as the handout's architecture names it: Conv2d(3, 6, 5), Linear(400, 120), MaxPool2d(2, 2)..."""
    kind = type(module).__name__
    if isinstance(module, nn.Conv2d):
        return f"Conv2d({module.in_channels}, {module.out_channels}, {_pair_text(module.kernel_size)})"
    if isinstance(module, nn.Linear):
        return f"Linear({module.in_features}, {module.out_features})"
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return f"{kind}({_pair_text(module.kernel_size)}, {_pair_text(module.stride)})"
    if isinstance(module, (nn.Softmax, nn.LogSoftmax)):
        return f"{kind}(dim={module.dim})"
    return kind


def public_name(qualified: str) -> str:
    """torch.nn.functional.relu -> F.relu; torch.relu and Tensor.view as they are."""
    return qualified.replace("torch.nn.functional.", "F.", 1)


def _copy(value):
    return value.detach().to("cpu", copy=True).as_subclass(torch.Tensor) if isinstance(value, torch.Tensor) else None


class Recorder(TorchFunctionMode):
    """Records the events of the forwards run while it is active (see the module doc)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.events: list[dict] = []
        self.apis: set[str] = set()
        self.inside = 0          # torch.nn modules running now
        self.quiet = False       # the recorder's own tensor work
        self.handles = []
        for name, module in model.named_modules():
            if type(module).__module__.startswith("torch.nn") and not isinstance(
                    module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
                self.handles.append(module.register_forward_pre_hook(self._enter))
                self.handles.append(module.register_forward_hook(self._leave(name or type(module).__name__)))

    def _enter(self, module, args):
        self.inside += 1

    def _leave(self, name: str):
        def hook(module, args, output):
            self.inside -= 1
            if self.inside == 0:
                kind = _KINDS.get(type(module).__name__, "other")
                weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)
                self._add({"name": name, "kind": kind, "text": module_text(module), "module": True,
                           "width": weight.shape[0] if kind in ("conv", "linear") and weight is not None else None},
                          output, weight, bias)
        return hook

    def _add(self, event: dict, output, weight=None, bias=None) -> None:
        if len(self.events) >= MAX_EVENTS:
            return
        self.quiet = True
        try:
            event.update(output=_copy(output), weight=_copy(weight), bias=_copy(bias))
        finally:
            self.quiet = False
        self.events.append(event)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if self.quiet or self.inside:
            return result
        from ..runner import _function_name      # the checker's naming of torch functions
        qualified = _function_name(func)
        short = qualified.rsplit(".", 1)[-1]
        if short.startswith("_") or (qualified.startswith("Tensor.") and short in _INSPECTION):
            return result
        self.apis.add(public_name(qualified))
        kind = _FUNCTION_KINDS.get(short)
        source = args[0] if args and isinstance(args[0], torch.Tensor) else None
        if kind == "flatten" and not (source is not None and isinstance(result, torch.Tensor)
                                      and source.dim() > 2 and result.dim() == 2):
            return result
        if kind == "reorder" and isinstance(result, torch.Tensor) and source is not None and \
                result.shape == source.shape and torch.equal(result, source):
            return result
        if kind is not None and isinstance(result, torch.Tensor):
            weight = args[1] if kind in ("conv", "linear") and len(args) > 1 else None
            bias = args[2] if kind in ("conv", "linear") and len(args) > 2 else (kwargs or {}).get("bias")
            text = f"{public_name(qualified)}" + (f" to {list(result.shape)}" if kind == "reorder" else "")
            self._add({"name": public_name(qualified), "kind": kind, "text": text, "module": False,
                       "width": weight.shape[0] if isinstance(weight, torch.Tensor) else None},
                      result, weight, bias)
        return result

    def close(self) -> None:
        for handle in self.handles:
            handle.remove()


def classify_apis(names) -> dict:
    """The forward's own calls by where they come from: {"outside_nn", "functional", "tensor_methods"} (sorted)."""
    names = sorted(set(names))
    return {"outside_nn": [n for n in names if not n.startswith(("F.", "Tensor.", "torch.nn."))],
            "functional": [n for n in names if n.startswith(("F.", "torch.nn."))],
            "tensor_methods": [n.removeprefix("Tensor.") for n in names if n.startswith("Tensor.")]}


def trace(model: nn.Module, x: torch.Tensor) -> tuple[object, list[dict], dict]:
    """(the model's output on x, its events, its APIs by classify_apis), recorded without gradients."""
    recorder = Recorder(model)
    try:
        with torch.no_grad(), recorder:
            output = model(x)
    finally:
        recorder.close()
    return output, recorder.events, classify_apis(recorder.apis)


# ----------------------------------------------------------------------------- the model form's calls, in the child


def cifar_shaped(n: int, n_classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n generated images [n, 3, 32, 32] in CIFAR-10's shape and range, and their labels: each class a fixed random
    smooth pattern plus noise, so that a LeNet can learn them in a few steps (CIFAR-10 itself is not here)."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.nn.functional.interpolate(torch.rand(n_classes, 3, 8, 8, generator=g), size=32, mode="bilinear")
    labels = torch.randint(0, n_classes, (n,), generator=g)
    images = (patterns[labels] + 0.25 * torch.randn(n, 3, 32, 32, generator=g)).clamp(0, 1)
    return (images - 0.5) / 0.25, labels


def _event_data(event: dict) -> dict:
    return {key: value for key, value in event.items() if value is not None}


def run_model_call(module, name: str, request: dict) -> dict:
    """One call of the model form: construct the class ``name`` with the request's constructor arguments, then
    ``check``: trace its forward on the request's batch; ``train``: a few SGD steps on generated data."""
    from ..runner import describe, describe_error
    options = request["options"]
    record = {"label": request["label"]}
    try:
        torch.manual_seed(options["seed"])
        model = getattr(module, name)(**options["constructor"])
    except BaseException as error:  # noqa: BLE001 - candidate code
        record["error"] = describe_error(error, "construct")
        return record
    if not isinstance(model, nn.Module):
        record["error"] = {"type": "TypeError", "message": f"{name}(...) made a {type(model).__name__}, not an "
                                                            f"nn.Module", "traceback": "", "phase": "construct"}
        return record
    record["parameters"] = [[n, list(p.shape), p.numel()] for n, p in model.named_parameters()]
    try:
        if options["stage"] == "check":
            model.eval()
            output, events, apis = trace(model, request["inputs"]["input"].clone())
            record["output"], record["output_info"] = describe(output)
            record["events"], record["apis"] = [_event_data(e) for e in events], apis
        else:
            record["losses"] = _train(model, options)
    except BaseException as error:  # noqa: BLE001 - candidate code
        record["error"] = describe_error(error, "forward" if options["stage"] == "check" else "train")
    return record


def _train(model: nn.Module, options: dict) -> list[float]:
    """SGD with momentum on generated images, as the handout's trainer (cross entropy of the logits): the losses."""
    images, labels = cifar_shaped(options["samples"], options["constructor"].get("n_classes", 10), options["seed"])
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=options["lr"], momentum=0.9)
    losses = []
    batch = options["batch"]
    for step in range(options["steps"]):
        start = (step * batch) % len(images)
        x, y = images[start:start + batch], labels[start:start + batch]
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses

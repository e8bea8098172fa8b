"""The lenet-dict form's calls: its cases, and how the child turns a case into the handouts' dicts and back.

A case is plain data and torch tensors (the checker's canonical NCHW inputs, native PyTorch's
too); :func:`run_call`, in the child, builds the handout's arguments from it (:mod:`.columns`),
calls the candidate and records what came back as torch tensors and plain data, judging nothing.

Classes of cases (the ``case`` of a call):

assignment  the handout's LeNet on MNIST: convolutions 1 -> 20 on 28 x 28 and 20 -> 50 on 12 x 12
            (5 x 5, stride 1, pad 0), pooling 2 x 2 stride 2 on 24 x 24 x 20 and 8 x 8 x 50, the inner
            product 800 -> 500 and ReLU on its 500 outputs; sgd_momentum with testLeNet's settings
general     non-square inputs (7 x 5, 6 x 9...), stride 2, pad 1, overlapping pool windows, batch 1;
            sgd_momentum with a decay and rates large enough that each convention shows
ties        max pooling of small integers: windows with tied maxima

A forward of a convolution or pooling is called once per layout (:data:`columns.LAYOUTS`), its
input and weight rows in that layout, so the parent can name the layout it is right in. A backward
gets its own forward's output dict (a forward that raises or returns no dict: the backward is
``blocked``) with ``diff`` set in the handout's layout; ``param_grad`` and ``input_od`` come back.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np
import torch

from . import columns

LAYER_DICTS = {"conv": {"type": "CONV"}, "pooling": {"type": "POOLING"}, "relu": {"type": "RELU"},
               "inner_product": {"type": "IP", "init_type": "uniform"}}


def _draw(generator: torch.Generator, *shape, integers: int = 0) -> torch.Tensor:
    if integers:
        return torch.randint(0, integers, shape, generator=generator).to(torch.float64)
    return torch.randn(*shape, generator=generator, dtype=torch.float64)


def layer_cases(kind: str, seed: int) -> list[dict]:
    """The cases of one layer (see the module doc): {case, x, weight, bias, options, diff}; x is NCHW."""
    g = torch.Generator().manual_seed(seed)
    specs = {
        "conv": [("assignment", (2, 1, 28, 28), 20, 5, 1, 0), ("assignment", (2, 20, 12, 12), 50, 5, 1, 0),
                 ("general", (2, 3, 7, 5), 4, 3, 1, 1), ("general", (1, 2, 6, 9), 3, 3, 2, 0)],
        "pooling": [("assignment", (2, 20, 24, 24), 2, 2), ("assignment", (2, 50, 8, 8), 2, 2),
                    ("general", (2, 2, 7, 9), 3, 2), ("general", (1, 3, 6, 8), 2, 1),
                    ("ties", (2, 3, 6, 6), 2, 2), ("ties", (1, 2, 8, 8), 2, 2)],
        "relu": [("assignment", (2, 500, 1, 1)), ("general", (1, 3, 7, 5))],
        "inner_product": [("assignment", (2, 50, 4, 4), 500), ("general", (1, 7, 1, 1), 3),
                          ("general", (3, 2, 3, 5), 4)],
    }[kind]
    cases = []
    for spec in specs:
        case, shape = spec[0], spec[1]
        x = _draw(g, *shape, integers=3 if case == "ties" else 0)
        weight = bias = None
        options = dict(LAYER_DICTS[kind])
        if kind == "conv":
            num, k, stride, pad = spec[2:]
            weight, bias = _draw(g, num, shape[1], k, k) / k, _draw(g, num)
            options.update(num=num, k=k, stride=stride, pad=pad, group=1)
            out_shape = (shape[0], num, (shape[2] + 2 * pad - k) // stride + 1, (shape[3] + 2 * pad - k) // stride + 1)
        elif kind == "pooling":
            k, stride = spec[2:]
            options.update(k=k, stride=stride, pad=0)
            out_shape = (shape[0], shape[1], (shape[2] - k) // stride + 1, (shape[3] - k) // stride + 1)
        elif kind == "inner_product":
            num = spec[2]
            inputs = shape[1] * shape[2] * shape[3]
            weight, bias = _draw(g, num, inputs) / inputs ** 0.5, _draw(g, num)
            options.update(num=num)
            out_shape = (shape[0], num)
        else:
            x = torch.where(x.abs() < 1e-3, x + 0.01, x)       # no input at ReLU's kink
            out_shape = shape
        cases.append({"case": case, "x": x, "weight": weight, "bias": bias, "options": options,
                      "diff": _draw(g, *out_shape)})
    return cases


def sgd_cases(seed: int, zero_based: bool) -> list[dict]:
    """sgd_momentum's cases: a conv layer, two layers without parameters (the handout's empty arrays) and an inner
    product, keyed from 1 (10-601's dicts) or from 0 (the port's lists), b [num] or [1, num]."""
    g = torch.Generator().manual_seed(seed)
    shapes = [((25, 4), 4), None, None, ((16, 3), 3)]
    cases = []
    for case, rates in (("assignment", (0.01, 0.02, 0.9, 0.0005)), ("general", (0.1, 0.3, 0.5, 0.2))):
        layers = []
        for shape in shapes:
            parts = {}
            for name in ("params", "winc", "grad"):
                if shape is None:
                    parts[name] = {"w": torch.zeros(0, dtype=torch.float64), "b": torch.zeros(0, dtype=torch.float64)}
                else:
                    b = _draw(g, shape[1])
                    parts[name] = {"w": _draw(g, *shape[0]), "b": b[None, :] if zero_based else b}
            layers.append(parts)
        cases.append({"case": case, "rates": rates, "layers": layers})
    return cases


def lr_cases() -> list[dict]:
    """get_lr's cases: testLeNet's schedule at three steps, and one with every argument other."""
    return [{"case": "assignment", "arguments": (step, 0.01, 0.0001, 0.75)} for step in (0, 1000, 30000)] + \
           [{"case": "general", "arguments": (5, 0.1, 0.5, 2.0)}]


LAYER_OF = {"conv_layer": "conv", "pooling_layer": "pooling", "relu": "relu", "inner_product": "inner_product"}


def plan_calls(function, settings) -> list:
    """The plans.Call of one function: each case of its layer (forward: every layout tried; backward: after its
    own forward), sgd_momentum's or get_lr's. Inputs are the canonical tensors, options the case's plain data."""
    from ..plans import Call
    found = []
    if function.name == "sgd_momentum":
        for index, case in enumerate(sgd_cases(settings.seed, zero_based=False)):
            inputs = {f"{part}.{i}.{p}": layer[part][p] for i, layer in enumerate(case["layers"])
                      for part in ("params", "winc", "grad") for p in "wb"}
            found.append(Call(f"{case['case']} {index}", case["case"], function.op, inputs,
                              {"rates": case["rates"], "layers": len(case["layers"]), "case": case["case"]}))
        return found
    if function.name == "get_lr":
        return [Call(f"{case['case']} get_lr{case['arguments']}", case["case"], function.op, {},
                     {"arguments": case["arguments"], "case": case["case"]}) for case in lr_cases()]
    kind = LAYER_OF[function.name.rsplit("_", 1)[0]]
    for index, case in enumerate(layer_cases(kind, settings.seed)):
        x = case["x"]
        label = f"{case['case']} {index}: x {list(x.shape[1:])} n={x.shape[0]}"
        options = dict(case["options"], case=case["case"], layer=kind, stage=function.kind, forward=function.pair
                       if function.kind == "backward" else function.name)
        inputs = {"x": x, "weight": case["weight"], "bias": case["bias"], "diff": case["diff"]}
        found.append(Call(label, case["case"], function.op, inputs, options,
                          stage="graded" if case["case"] != "general" else "sizes",
                          shapes="graded" if case["case"] != "general" else "small"))
    return found


# ----------------------------------------------------------------------------- in the child


def _parameter_count(function) -> int | None:
    try:
        return len(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return None


def variant_in(module) -> str:
    """'port' when the module is the port's folder (see lenet_dict.locate) or its argument lists are the port's
    (relu_forward(input_data), sgd_momentum(rate, mu, weight_decay, ...)); else 'cmu10601'."""
    if getattr(module, "__name__", "").endswith("_lenet_port"):
        return "port"
    if _parameter_count(getattr(module, "relu_forward", None)) == 1 or \
            _parameter_count(getattr(module, "sgd_momentum", None)) == 6:
        return "port"
    return "cmu10601"


def run_call(module, name: str, request: dict) -> dict:
    """One call of a lenet-dict function, from a plans.Call request (see plan_calls)."""
    import time
    started = time.perf_counter()
    variant = variant_in(module)
    options = request["options"]
    port = variant == "port"
    if name == "sgd_momentum":
        inputs = request["inputs"]
        layers = [{part: {p: inputs[f"{part}.{i}.{p}"] for p in "wb"} for part in ("params", "winc", "grad")}
                  for i in range(options["layers"])]
        if port:
            for layer in layers:
                for part in layer.values():
                    part["b"] = part["b"][None, :] if part["b"].numel() else part["b"]
        case = {"case": options["case"], "rates": options["rates"], "layers": layers}
        one_rate = _parameter_count(getattr(module, name)) == 6
        record = run_sgd_call(module, name, {"label": request["label"], "case": case, "zero_based": port,
                                             "one_rate": one_rate})
        record.update(zero_based=port, one_rate=one_rate)
    elif name == "get_lr":
        record = run_lr_call(module, name, {"label": request["label"], "case": options})
    else:
        inputs = request["inputs"]
        case = {"case": options["case"], "x": inputs["x"], "weight": inputs.get("weight"), "bias": inputs.get("bias"),
                "diff": inputs["diff"], "options": {k: v for k, v in options.items()
                                                    if k not in ("case", "layer", "stage", "forward")}}
        kind = options["layer"]
        call = {"label": request["label"], "case": case, "layer": kind, "stage": options["stage"],
                "forward": options["forward"], "layout": columns.LAYOUT_OF[variant],
                "layouts": list(columns.LAYOUTS) if kind in ("conv", "pooling") else [columns.LAYOUT_OF[variant]],
                "takes_layer": _parameter_count(getattr(module, options["forward"], None)) != 1,
                "row_bias": port}
        record = run_layer_call(module, name, call)
    record.update(variant=variant, seconds=[time.perf_counter() - started], native_seconds=[])
    record.setdefault("error", None)
    return record


def _value(value):
    """(a float64 tensor of a returned array or number, or None; facts about it)."""
    from ..runner import describe     # the checker's description of whatever a candidate returned
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        value = np.asarray(value, dtype=np.float64)
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        value = np.float64(value)
    tensor, info = describe(value)
    return (None if tensor is None else tensor.to(torch.float64)), info


def _meta(value) -> dict:
    return {key: value.get(key) for key in ("height", "width", "channel", "batch_size")
            if isinstance(value.get(key), (int, float, np.integer, np.floating))}


def _input_dict(case: dict, layout: str) -> dict:
    x = case["x"]
    return columns.layer_data(x, layout)


def _param(case: dict, layout: str, row_bias: bool) -> dict:
    if case["weight"] is None:
        return {"w": np.array([]), "b": np.array([])}
    weight = case["weight"]
    if weight.dim() == 4:
        w = columns.conv_weight_rows(weight, layout)
    else:                        # inner product: w's rows follow the input's columns
        n, c, h, width = case["x"].shape
        w = columns.to_columns(weight.reshape(weight.shape[0], c, h, width), layout)
    return {"w": w, "b": columns.bias(case["bias"], row_bias)}


def _arguments(kind: str, stage: str, takes_layer: bool, inputs, layer, param, output=None) -> tuple:
    """The handout's argument list of one call: (output,) input, layer (, param)."""
    head = (output,) if stage == "backward" else ()
    if kind in ("conv", "inner_product"):
        return head + (inputs, layer, param)
    return head + ((inputs, layer) if takes_layer or stage == "backward" else (inputs,))


def _forward_record(function, request: dict, case: dict, layout: str) -> tuple[dict, object, tuple]:
    """Call a forward in one layout: (its record, what it returned, the arguments it got)."""
    arguments = _arguments(request["layer"], "forward", request["takes_layer"], _input_dict(case, layout),
                           copy.deepcopy(case["options"]), _param(case, layout, request["row_bias"]))
    before = copy.deepcopy(arguments)
    record = {"layout": layout}
    try:
        returned = function(*arguments)
    except BaseException as error:  # noqa: BLE001 - candidate code
        from ..runner import describe_error
        record["error"] = describe_error(error, "forward")
        return record, None, arguments
    if isinstance(returned, dict):
        record["meta"] = _meta(returned)
        record["data"], record["info"] = _value(returned.get("data"))
    else:
        record["data"], record["info"] = None, _value(returned)[1]
    record["mutated"] = _mutated(before, arguments)
    return record, returned, arguments


def _mutated(before: tuple, after: tuple) -> list[str]:
    """The names of the arguments a call changed: input, layer, param (their arrays compared entry by entry)."""
    names = ("input", "layer", "param")
    return [name for name, old, new in zip(names, before, after) if not _same(old, new)]


def _same(old, new) -> bool:
    if isinstance(old, dict):
        return isinstance(new, dict) and old.keys() == new.keys() and all(_same(old[k], new[k]) for k in old)
    if isinstance(old, np.ndarray):
        return isinstance(new, np.ndarray) and old.shape == new.shape and np.array_equal(old, new, equal_nan=True)
    return old == new


def run_layer_call(module, name: str, request: dict) -> dict:
    """One call of a layer function (see the module doc): a forward in each of request["layouts"], or a backward
    after its forward (request["forward"]) in the handout's layout."""
    case, layout = request["case"], request["layout"]
    if request["stage"] == "forward":
        return {"label": request["label"],
                "layouts": [_forward_record(getattr(module, name), request, case, other)[0]
                            for other in request["layouts"]]}
    record = {"label": request["label"]}
    forward, returned, arguments = _forward_record(getattr(module, request["forward"]), request, case, layout)
    if "error" in forward or not isinstance(returned, dict):
        record["blocked"] = f"{request['forward']} " + ("raised" if "error" in forward else "returned no dict")
        return record
    output = dict(returned)
    diff = case["diff"]
    output["diff"] = (diff.T.numpy().copy() if diff.dim() == 2 else columns.to_columns(diff, layout))
    inputs = arguments[0]
    layer = arguments[1] if len(arguments) > 1 else copy.deepcopy(case["options"])
    param = arguments[2] if len(arguments) > 2 else None
    call = _arguments(request["layer"], "backward", True, inputs, layer, param, output)
    before = copy.deepcopy(call[1:])
    try:
        returned = getattr(module, name)(*call)
    except BaseException as error:  # noqa: BLE001 - candidate code
        from ..runner import describe_error
        record["error"] = describe_error(error, "backward")
        return record
    param_grad, input_od = None, returned
    if param is not None:
        pair = isinstance(returned, (tuple, list)) and len(returned) == 2
        param_grad, input_od = returned if pair else (None, None)
        if not pair:
            record["returned_info"] = _value(returned)[1]
    record["input_od"], record["input_od_info"] = _value(input_od)
    if param is not None:
        parts = param_grad if isinstance(param_grad, dict) else {}
        for part in ("w", "b"):
            record[part], record[f"{part}_info"] = _value(parts.get(part))
        if not isinstance(param_grad, dict):
            record["param_grad_info"] = _value(param_grad)[1]
    record["mutated"] = _mutated(before, call[1:])
    return record


def _container(layers: list, zero_based: bool, part: str, numpy_of):
    values = [{k: numpy_of(v) for k, v in layer[part].items()} for layer in layers]
    return values if zero_based else {i + 1: value for i, value in enumerate(values)}


def run_sgd_call(module, name: str, request: dict) -> dict:
    """One call of sgd_momentum: the handout's containers built from the case, what it returned read back."""
    case, zero_based = request["case"], request["zero_based"]
    numpy_of = lambda t: t.numpy().copy()       # noqa: E731
    params, winc, grad = (_container(case["layers"], zero_based, part, numpy_of) for part in ("params", "winc", "grad"))
    w_rate, b_rate, mu, decay = case["rates"]
    head = (w_rate, mu, decay) if request["one_rate"] else (w_rate, b_rate, mu, decay)
    before = copy.deepcopy((params, winc, grad))
    record = {"label": request["label"]}
    try:
        returned = getattr(module, name)(*head, params, winc, grad)
    except BaseException as error:  # noqa: BLE001 - candidate code
        from ..runner import describe_error
        record["error"] = describe_error(error, "forward")
        return record
    if not (isinstance(returned, tuple) and len(returned) == 2):
        record["info"] = _value(returned)[1]
        return record
    for part, container in zip(("params", "winc"), returned):
        keys = range(len(case["layers"])) if zero_based else range(1, len(case["layers"]) + 1)
        record[part] = []
        for key in keys:
            try:
                layer = container[key]
                record[part].append({p: _value(layer[p])[0] for p in ("w", "b")})
            except BaseException:  # noqa: BLE001 - a container of another kind or keys
                record[part].append({"w": None, "b": None})
    record["mutated"] = [n for n, old, new in zip(("params", "param_winc", "param_grad"), before, (params, winc, grad))
                         if not _same_container(old, new)]
    return record


def _same_container(old, new) -> bool:
    items = old.items() if isinstance(old, dict) else enumerate(old)
    return all(_same(value, new[key]) for key, value in items)


def run_lr_call(module, name: str, request: dict) -> dict:
    record = {"label": request["label"]}
    try:
        record["value"], record["info"] = _value(getattr(module, name)(*request["case"]["arguments"]))
    except BaseException as error:  # noqa: BLE001 - candidate code
        from ..runner import describe_error
        record["error"] = describe_error(error, "forward")
    return record

"""Judge the lenet-dict form's functions from what the child recorded: checks, findings and diagnoses.

Native PyTorch's answers come from :mod:`.lenet_truth`, turned into the handout's columns in the
layout the handout's given code uses (:mod:`.columns`); every comparison is
simple_conv_net.compare's. Beyond "right or wrong", each wrong output is tested against what the
usual mistakes would have produced, and the first that fits is the diagnosis:

forwards    zeros of the expected shape (the starter's placeholder); right in another layout (each
            layout is tried; a square case cannot tell hwc-F from chw-C, so the non-square
            ``general`` cases name it); an argument changed in place
backwards   param_grad['w'] transposed; db not summed over the batch; the ReLU mask taken from
            output['diff'] or of the wrong sign; a pool window's gradient sent to every tied
            maximum; each filter's db the sum over every filter (the 10-601 handout's own given
            conv_layer_backward); on tied maxima, any routing to one of a window's maxima passes
sgd         unchanged; the decay missing or on the bias too; momentum after the step; the two
            rates swapped; layers walked from 0 in 10-601's dicts keyed from 1
errors      Python 2 code under Python 3: sizes with ``/`` ('float' object cannot be interpreted as
            an integer) and the like (see :func:`error_diagnosis`)

Findings are short codes as in parity_tests/check_corpus/lenet_dict/MANIFEST.json ("zeros:out",
"layout:chw-C", "params.w", "blocked"...), kept in the result's notes as ``finding CASE: CODES``
so that tests and instructors can read them back. The ``assignment`` and ``ties`` cases decide;
``general`` ones (non-square, strides, pads) fail a function only when ``strict``, else they are
reported as notes.
"""

from __future__ import annotations

import torch

from . import columns
from .lenet_truth import SGD_VARIANTS, get_lr, layer_truth, sgd_truth, sgd_variant
from .verdict import Verdict, result_of
from .verdict import compared as _compare, detail as _describe, placeholder_zeros as _zeros

LAYOUT_WORDS = {"hwc-C": "C order of (height, width, channel), the channel fastest",
                "hwc-F": "Fortran order of (height, width, channel), the height fastest",
                "chw-C": "C order of (channel, height, width), the width fastest"}


def error_diagnosis(error: dict) -> str:
    """One line for an exception a call raised: the Python 2 and NumPy drift the handouts' code meets, else it."""
    kind, message = error.get("type", "Error"), str(error.get("message", "")).splitlines()[0] if error else ""
    if "cannot be interpreted as an integer" in message and "float" in message:
        return (f"{kind}: {message}: a size computed with / (true division in Python 3; the Python 2 handout "
                f"writes h_out = (h_in - k) / stride + 1): use //")
    if kind == "KeyError" and message.strip("'\"") == "0":
        return ("KeyError: 0: the layers are walked from 0 (the Python 3 port's lists); this handout's params are "
                "dicts keyed from 1")
    if kind == "IndexError" and "out of range" in message:
        return (f"{kind}: {message}: the layers are walked past the end: the port's params are lists indexed from "
                f"0 (10-601's dicts are keyed from 1)")
    if kind == "NameError" and "xrange" in message:
        return f"{kind}: {message}: xrange is Python 2's; use range"
    return f"{kind}: {message}"


# ----------------------------------------------------------------------------- layers


def raised(verdict: Verdict, kind: str, what: str, case: str, error: dict) -> None:
    """A call that raised: its check fails and the error is its finding, in one line (see error_diagnosis)."""
    verdict.check(kind, what, case, False, f"raised {error_diagnosis(error)}")
    verdict.find(case, f"error:{error['type']}", error_diagnosis(error))


def _out_columns(truth: torch.Tensor, layout: str) -> torch.Tensor:
    return truth.T if truth.dim() == 2 else torch.as_tensor(columns.to_columns(truth, layout))


def _input_columns(case: dict, grad: torch.Tensor, layout: str) -> torch.Tensor:
    return torch.as_tensor(columns.to_columns(grad.reshape(case["x"].shape), layout))


def _weight_columns(case: dict, grad: torch.Tensor, layout: str) -> torch.Tensor:
    if grad.dim() == 4:
        return torch.as_tensor(columns.conv_weight_rows(grad, layout))
    n, c, h, w = case["x"].shape
    return torch.as_tensor(columns.to_columns(grad.reshape(grad.shape[0], c, h, w), layout))


def truth_of(kind: str, case: dict) -> dict:
    x = case["x"].flatten(1) if kind == "inner_product" else case["x"]
    diff = case["diff"]
    return layer_truth(kind, x, case["weight"], case["bias"], diff, case["options"])


def judge_forward(kind: str, handout_layout: str, calls: list, verdict: Verdict) -> None:
    """calls: [(case, record)] of a forward (see lenet_calls.run_layer_call)."""
    for case, record in calls:
        truth = truth_of(kind, case)["out"]
        by_layout = {r["layout"]: r for r in record["layouts"]}
        mine = by_layout[handout_layout]
        label = case["case"]
        if "error" in mine:
            raised(verdict, "values", "out", label, mine["error"])
            continue
        if mine.get("data") is None:
            what = mine.get("info", {}).get("type", "nothing")
            verdict.check("type", "out", label, False, f"returned {what}, not the handout's dict with a 'data' array")
            continue
        expected = _out_columns(truth, handout_layout)
        comparison = _compare(expected, mine["data"])
        verdict.check("values", "out", label, comparison.passed, _describe(comparison))
        if mine.get("mutated"):
            verdict.check("arguments", "unchanged", label, False, f"changed {', '.join(mine['mutated'])} in place")
            verdict.find(label, f"mutates:{mine['mutated'][0]}",
                         f"changes its argument {mine['mutated'][0]}['data'] in place (e.g. through a view of a "
                         f"column): the layer before it loses its output")
        if comparison.passed:
            continue
        if _zeros(mine["data"], expected):
            verdict.find(label, "zeros:out", "returns zeros of the expected size (the starter's placeholder): not "
                                             "implemented yet")
            continue
        verdict.find(label, "out")
        right_in = [layout for layout, other in by_layout.items() if layout != handout_layout and "error" not in other
                    and other.get("data") is not None and _compare(_out_columns(truth, layout), other["data"]).passed]
        if right_in:
            verdict.find(label, "layout:" + "|".join(right_in), _layout_diagnosis(right_in, handout_layout))


def _layout_diagnosis(right_in: list, handout_layout: str) -> str:
    if len(right_in) > 1:
        return (f"right if each column is read in {' or '.join(LAYOUT_WORDS[l] for l in right_in)} (on a square input "
                f"the two differ by a transpose of each plane, which this layer commutes with); the handout's given "
                f"code uses {LAYOUT_WORDS[handout_layout]}")
    return (f"reads and writes each column in {LAYOUT_WORDS[right_in[0]]} ({right_in[0]}), while the handout's given "
            f"code, whose backward and next layer it feeds, uses {LAYOUT_WORDS[handout_layout]} ({handout_layout}): "
            f"the network would train on scrambled features wherever the two differ")


def _routed_to_one_maximum(case: dict, got: torch.Tensor, layout: str) -> bool:
    """Pooling with windows that do not overlap: each window's gradient lies whole on one of its maxima."""
    k, stride = case["options"]["k"], case["options"]["stride"]
    if k != stride:
        return False
    x = case["x"]
    n, c, h, w = x.shape
    grad = columns.from_columns(got, h, w, c, layout)
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    windows = lambda t: t[:, :, :ho * k, :wo * k].reshape(n, c, ho, k, wo, k).permute(0, 1, 2, 4, 3, 5).reshape(  # noqa: E731
        n, c, ho, wo, k * k)
    gx, xx = windows(grad), windows(x)
    at_max = xx == xx.amax(-1, keepdim=True)
    return bool(((gx != 0) <= at_max).all()) and bool(((gx != 0).sum(-1) <= 1).all()) and \
        torch.allclose(gx.sum(-1), case["diff"], rtol=1e-12, atol=1e-12) and \
        not bool(grad[:, :, ho * k:, :].any() or grad[:, :, :, wo * k:].any())


def _every_tie(case: dict) -> torch.Tensor:
    """Max pooling's gradient sent to every entry tied for its window's maximum (k == stride), NCHW."""
    k = case["options"]["k"]
    x, diff = case["x"], case["diff"]
    n, c, h, w = x.shape
    ho, wo = diff.shape[2:]
    grad = torch.zeros_like(x)
    for i in range(ho):
        for j in range(wo):
            window = x[:, :, i * k:i * k + k, j * k:j * k + k]
            at_max = window == window.amax((2, 3), keepdim=True)
            grad[:, :, i * k:i * k + k, j * k:j * k + k] += at_max * diff[:, :, i, j, None, None]
    return grad


def _backward_hypotheses(kind: str, case: dict, part: str, got: torch.Tensor, layout: str, truth: dict):
    """(finding, diagnosis) of the first usual mistake ``got`` (a wrong gradient ``part``) fits, else None."""
    fits = lambda wrong: _compare(wrong, got) is not None and _compare(wrong, got).passed   # noqa: E731
    diff = case["diff"]
    if part == "w" and fits(_weight_columns(case, truth["w"], layout).T):
        return "w", "param_grad['w'] is transposed: [outputs, inputs], where param['w'] is [inputs, outputs]"
    if part == "b" and kind == "conv" and fits(torch.full_like(truth["b"], float(diff.sum()))):
        return "b", ("each filter's bias gradient is the sum of diff over every position *and every filter* "
                     "(np.sum without an axis): the 10-601 handout's own given conv_layer_backward does this")
    if part == "b" and got.dim() == 2 and got.shape[-1] == diff.shape[0] and got.numel() == diff.numel():
        return "b", "db is not summed over the batch: one column per sample"
    if part == "input_od" and kind == "relu":
        d = _out_columns(diff, layout)
        if fits(d * (d > 0)):
            return "input_od", "the ReLU mask is taken from output['diff'], not from the layer's input['data']"
        x = _out_columns(case["x"], layout)
        if fits(d * (x < 0)):
            return "input_od", "the ReLU mask has the wrong sign: the gradient passes where the input was negative"
    if part == "input_od" and kind == "pooling" and case["options"]["k"] == case["options"]["stride"] and \
            fits(_input_columns(case, _every_tie(case), layout)):
        return "input_od", "a window's gradient goes to every entry tied for its maximum, not to one of them"
    return None


def judge_backward(kind: str, layout: str, calls: list, verdict: Verdict) -> None:
    for case, record in calls:
        label = case["case"]
        if record.get("blocked"):
            verdict.check("values", "input_od", label, False, f"not run: {record['blocked']}")
            verdict.find(label, "blocked", f"not run: {record['blocked']}, so there is no output to run it on")
            continue
        if record.get("error"):
            raised(verdict, "gradient", "input_od", label, record["error"])
            continue
        truth = truth_of(kind, case)
        parts = {"input_od": _input_columns(case, truth["input_od"], layout)}
        if "w" in truth:
            parts["w"] = _weight_columns(case, truth["w"], layout)
            parts["b"] = truth["b"]
        for part, expected in parts.items():
            got = record.get(part)
            if got is None:
                info = record.get(f"{part}_info") or record.get("returned_info") or {}
                verdict.check("type", part, label, False, f"returned {info.get('type', 'nothing')} for {part}")
                continue
            if part == "b" and got.numel() == expected.numel() and got.dim() == 2 and got.shape[0] == 1:
                got = got.reshape(expected.shape)         # b [1, num] (the port's shape) for [num]
            comparison = _compare(expected, got)
            passed = comparison.passed
            if not passed and part == "input_od" and kind == "pooling" and label == "ties" and \
                    _routed_to_one_maximum(case, got, layout):
                passed = True
                verdict.notes.append("ties: each window's gradient goes to one of its tied maxima, not always the "
                                     "first in row-major order as PyTorch's: a valid subgradient")
            verdict.check("gradient", part, label, passed, _describe(comparison))
            if passed:
                continue
            if _zeros(got, expected):
                verdict.find(label, f"zeros:{part}", "returns zeros of the expected size (the starter's "
                                                     "placeholder): not implemented yet")
                continue
            hypothesis = _backward_hypotheses(kind, case, part, got, layout, truth)
            verdict.find(label, part, hypothesis[1] if hypothesis else None)
        if record.get("mutated"):
            verdict.check("arguments", "unchanged", label, False, f"changed {', '.join(record['mutated'])} in place")
            verdict.find(label, f"mutates:{record['mutated'][0]}")


# ----------------------------------------------------------------------------- sgd_momentum and get_lr


def _update_parts(update, zero_based: bool) -> dict:
    """{"params.w": [per layer], ...} of an Update (keys from 0 or 1)."""
    keys = sorted(update.params)
    return {f"{part}.{p}": [getattr(update, part)[key][p] for key in keys] for part in ("params", "winc") for p in "wb"}


def judge_sgd(calls: list, one_rate: bool, zero_based: bool, verdict: Verdict) -> None:
    for case, record in calls:
        label = case["case"]
        if record.get("error"):
            raised(verdict, "values", "update", label, record["error"])
            continue
        if "params" not in record:
            verdict.check("type", "update", label, False, f"returned {record.get('info', {}).get('type')}, not "
                                                          f"(params, param_winc)")
            continue
        w_rate, b_rate, mu, decay = case["rates"]
        if one_rate:
            b_rate = w_rate
        containers = {part: {i: layer[part] for i, layer in enumerate(case["layers"])} for part in ("params", "winc",
                                                                                                   "grad")}
        arguments = (w_rate, b_rate, mu, decay, containers["params"], containers["winc"], containers["grad"])
        truth = _update_parts(sgd_truth(*arguments), zero_based)
        got = {f"{part}.{p}": [layer[p] for layer in record[part]] for part in ("params", "winc") for p in "wb"}
        wrong = []
        for name, expected in truth.items():
            ok = all(g is not None and _compare(e.reshape(g.shape) if e.numel() == g.numel() else e, g).passed
                     for e, g in zip(expected, got[name]))
            verdict.check("values", name, label, ok, "equal to torch.optim.SGD's step" if ok else "differs from "
                                                                                              "torch.optim.SGD's step")
            if not ok:
                wrong.append(name)
        if record.get("mutated"):
            verdict.check("arguments", "unchanged", label, False, f"changed {', '.join(record['mutated'])} in place")
        if not wrong:
            continue
        unchanged = {part: all(g is not None and torch.equal(g.reshape(-1), case_layer[part][p].reshape(-1))
                               for layer, case_layer in zip(record[part], case["layers"]) for p, g in layer.items())
                     for part in ("params", "winc")}
        if all(unchanged.values()):
            verdict.find(label, "unchanged:params")
            verdict.find(label, "unchanged:winc", "returns the parameters and increments unchanged: not implemented yet")
            continue
        for name in wrong:
            verdict.find(label, name)
        for variant in SGD_VARIANTS:
            if variant == "rates swapped" and (one_rate or w_rate == b_rate):
                continue
            expected = _update_parts(sgd_variant(variant, *arguments), zero_based)
            if all(g is not None and _compare(e.reshape(g.shape) if e.numel() == g.numel() else e, g).passed
                   for name in expected for e, g in zip(expected[name], got[name])):
                verdict.find(label, name, f"sgd_momentum: {SGD_VARIANTS[variant]}")
                break


def judge_lr(calls: list, verdict: Verdict) -> None:
    for case, record in calls:
        label = case["case"]
        if record.get("error"):
            raised(verdict, "values", "rate", label, record["error"])
            continue
        expected = torch.tensor(get_lr(*case["arguments"]), dtype=torch.float64)
        got = record.get("value")
        ok = got is not None and got.numel() == 1 and _compare(expected, got.reshape(())).passed
        verdict.check("values", f"get_lr{tuple(case['arguments'])}", label, ok,
                      f"{None if got is None else got.reshape(-1)[:1].tolist()}, expected {expected.item():.6g}")
        if not ok:
            verdict.find(label, "rate")


# ----------------------------------------------------------------------------- one function's result


def _case_of(call) -> dict:
    """The case a call was planned from (see lenet_calls.plan_calls), as the judges take it."""
    inputs, options = call.inputs, call.options
    if call.op == "lenet.sgd_momentum":
        layers = [{part: {p: inputs[f"{part}.{i}.{p}"] for p in "wb"} for part in ("params", "winc", "grad")}
                  for i in range(options["layers"])]
        return {"case": options["case"], "rates": options["rates"], "layers": layers}
    if call.op == "lenet.get_lr":
        return {"case": options["case"], "arguments": options["arguments"]}
    return {"case": options["case"], "x": inputs["x"], "weight": inputs.get("weight"), "bias": inputs.get("bias"),
            "diff": inputs["diff"], "options": {k: v for k, v in options.items()
                                                if k not in ("case", "layer", "stage", "forward")}}


def _port_layers(case: dict) -> dict:
    """sgd_momentum's case as the port's child built it: every b [1, num]."""
    for layer in case["layers"]:
        for part in layer.values():
            if part["b"].numel():
                part["b"] = part["b"][None, :]
    return case


def analyse(function, calls: list, result, settings):
    """The analysis.FunctionResult of one lenet-dict function (see the module doc)."""
    from .lenet_dict import VARIANT_NOTES
    verdict = Verdict(bool(getattr(settings, "strict", False)))

    def judge(seen):
        ran = [(_case_of(s.call), s.record) for s in seen]
        variant = next((record["variant"] for _, record in ran), None)
        if not ran:
            return []
        layout = columns.LAYOUT_OF[variant]
        if function.op == "lenet.sgd_momentum":
            zero_based, one_rate = ran[0][1]["zero_based"], ran[0][1]["one_rate"]
            judge_sgd([(_port_layers(c) if zero_based else c, r) for c, r in ran], one_rate, zero_based, verdict)
        elif function.op == "lenet.get_lr":
            judge_lr(ran, verdict)
        elif function.kind == "forward":
            judge_forward(calls[0].options["layer"], layout, ran, verdict)
        else:
            judge_backward(calls[0].options["layer"], layout, ran, verdict)
        return [VARIANT_NOTES[variant]]

    return result_of(function, calls, result, verdict, judge)

"""The functional form: the ops under torch.nn.functional's names and signatures (``conv2d(input, weight,
bias, stride, padding, dilation, groups)``), the form of ``vector_ops`` and ``scalar_ops`` and of any custom-op
module.

Each op is checked on a table of shapes and options (:func:`plans.functional_calls`); a function the
module does not define is missing, not failing. Graded with a point per function defined (and one for
training, task 3, which builds SimpleConvNet from its conv2d, max_pool2d, flatten, linear and relu).

Newer arguments. torch.nn.functional's signatures grew over the years, and many custom ops keep the
older ones (``conv2d(input, weight, bias, stride, padding)``). The table has cases of every newer
argument (:data:`KEYWORDS`, plus conv2d's ``padding='same'`` / ``'valid'`` and nll_loss's K-dimensional
input: :func:`extensions`), and judges them so:

- a call the function does not take (Python's ``TypeError: ... unexpected keyword argument 'dilation'``)
  or refuses (``NotImplementedError``) is reported, not judged, and so is one that raises on a new value
  or shape of an old argument it was not written for (``padding='same'``; see :func:`unsupported`): a
  note says "does not accept dilation" with the error and the calls, and the function's status comes
  from its other calls, as before those cases existed;
- a function that takes the argument answers for it: a wrong value, a wrong gradient or any other error
  fails that call like any other, with the usual diagnoses (among them a hypothesis that the argument
  is ignored).

``return_indices=True`` asks for the pair (output, indices): the output is checked as always, the
indices against PyTorch's (int64 positions ``h*W + w`` in each input plane) in a check of their own,
"indices <call>" (a different maximum of a window with tied maxima is as valid).
"""

from __future__ import annotations

from .base import Form, Function

FUNCTIONS = {f.name: f for f in (
    Function("conv2d", "conv2d", ("input", "weight", "bias", "stride", "padding", "dilation", "groups")),
    Function("max_pool2d", "max_pool2d", ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                          "return_indices")),
    Function("relu", "relu", ("input",)),
    Function("linear", "linear", ("input", "weight", "bias")),
    Function("flatten", "flatten", ("input", "start_dim", "end_dim")),
    Function("log_softmax", "log_softmax", ("input", "dim", "dtype")),
    Function("nll_loss", "nll_loss", ("input", "target", "weight", "ignore_index", "reduction")),
    Function("batch_norm", "batch_norm", ("input", "running_mean", "running_var", "weight", "bias", "training",
                                          "momentum", "eps")),
)}

# The arguments an older signature lacks, passed by keyword (at values other than their defaults) in the cases
# that use them.
KEYWORDS = {"conv2d": ("dilation", "groups"), "max_pool2d": ("dilation", "ceil_mode", "return_indices"),
            "nll_loss": ("weight", "ignore_index"), "log_softmax": ("dtype",)}


def extensions(call) -> list[str]:
    """The newer arguments a call uses (see the module doc): keywords older signatures lack, and new values or
    shapes of old arguments; [] for a call an older signature takes as it always did."""
    found = [name for name in KEYWORDS.get(call.op, ()) if name in call.kwargs]
    if call.op == "conv2d" and isinstance(call.options.get("padding"), str):
        found.append(f"padding={call.options['padding']!r}")
    if call.op == "nll_loss" and call.inputs["input"].dim() > 2:
        found.append("a K-dimensional input")
    return found


def unsupported(seen: list) -> dict:
    """{id of a call: what it shows the function does not support ("does not accept dilation")} for the calls with
    newer arguments that raised for want of them (see the module doc); the others are judged like any other.

    A keyword the function does not take is named by Python's TypeError; a NotImplementedError refuses what the
    call uses. An error in a call that uses a new value of an old argument (padding='same') is that value's when
    it is all the call uses new, or when the calls that use it alone raised too: with a keyword the function
    takes beside it (dilation), an error counts against the function, unless the value alone already fails."""
    found, values = {}, {}
    for s in seen:
        used = extensions(s.call)
        if not used or not s.error:
            continue
        kind, message = s.error["type"], s.error["message"]
        keywords = [name for name in used if name in KEYWORDS[s.call.op]]
        rejected = [name for name in keywords
                    if kind == "TypeError" and f"unexpected keyword argument '{name}'" in message]
        if rejected:
            found[id(s.call)] = f"does not accept {rejected[0]}"
        elif kind == "NotImplementedError":
            found[id(s.call)] = f"refuses {' with '.join(used)}"
        elif len(keywords) < len(used):
            values[id(s.call)] = ([what for what in used if what not in keywords][0], bool(keywords))
    alone = {what for what, mixed in values.values() if not mixed}
    found.update({key: f"does not accept {what}" for key, (what, mixed) in values.items() if what in alone})
    return found


def run_call(module, name: str, request: dict) -> dict:
    """In the child: :func:`runner.run_call`; with return_indices=True the pair's output is what is checked and
    differentiated, its indices are recorded beside it."""
    from .. import runner
    function = getattr(module, name)
    if not request["kwargs"].get("return_indices"):
        return runner.run_call(function, request)
    returned = {}

    def output_of_pair(*args, **kwargs):
        output = function(*args, **kwargs)
        if isinstance(output, (tuple, list)) and len(output) == 2:
            returned["indices"] = output[1]
            return output[0]
        return output                        # not a pair: the indices check says so

    record = runner.run_call(output_of_pair, request)
    if "indices" in returned:
        record["indices"], record["indices_info"] = runner.describe(returned["indices"])
    return record


def indices_check(s):
    """max_pool2d's indices (return_indices=True) against PyTorch's: an analysis.Check."""
    from ..analysis import Check
    from ..hypotheses import index_mistakes
    from ..oracle import native_indices
    from ..text import at, number
    name = f"indices {s.call.label}"
    info, got = s.record.get("indices_info"), s.record.get("indices")
    if info is None:
        return Check(name, False, f"returns a {s.info.get('type', 'value')}, not the pair (output, indices) "
                                  f"return_indices=True asks for")
    if got is None:
        return Check(name, False, f"the indices are a {info['type']}, not a tensor of integers")
    expected = native_indices(s.call)
    if got.shape != expected.shape:
        return Check(name, False, f"indices of shape {list(got.shape)}, expected {list(expected.shape)}")
    if info.get("dtype") != str(expected.dtype):
        return Check(name, False, f"{info.get('dtype')} indices, PyTorch's are {expected.dtype}")
    differ = got != expected
    if not differ.any():
        return Check(name, True, "equal to PyTorch's: int64 positions h*W + w in each input plane")
    planes = s.call.inputs["input"].double().flatten(-2)
    inside = ((got >= 0) & (got < planes.shape[-1])).all()
    if inside and _same(planes.gather(-1, got.long().flatten(-2)).reshape(got.shape), s.truth.exact.output):
        return Check(name, True, f"{int(differ.sum())} indices point at another maximum of a window with tied maxima "
                                 f"than PyTorch's (the first in window order): as valid")
    position = tuple(int(i) for i in differ.nonzero()[0])
    mistake = next((f": they are {text}" for text, predicted in index_mistakes(expected, s.call.inputs["input"].shape,
                                                                               s.call.options)
                    if _same(predicted, got)), "")
    return Check(name, False, f"{int(differ.sum())} of {differ.numel()} indices differ from PyTorch's (first "
                              f"{at(position)}: {number(got[position].item())} where PyTorch gives "
                              f"{expected[position].item()}){mistake}")


def _same(a, b) -> bool:
    """Equal shapes and values, whatever the dtypes."""
    return a.shape == b.shape and bool((a.double() == b.double()).all())


def refused_note(what: str, refused: list) -> str:
    """One note for the calls a function does not take, by what it does not accept."""
    from ..text import error_text, where
    labels = list(dict.fromkeys(s.call.label.removesuffix(" (grad)") for s in refused))
    error = refused[0].error
    return (f"{what}: {error_text(error)}{where(error['traceback'])} ({len(refused)} calls reported, not judged: "
            f"{', '.join(labels[:4])}{' ...' if len(labels) > 4 else ''})")


def analyse(function: Function, calls: list, result, settings):
    """analysis.analyse on the calls the function takes (see the module doc), the indices checked, the calls it
    does not take in notes."""
    from .. import analysis
    try:
        seen = {id(s.call): s for s in analysis.seen_calls(calls, result)}
        refused = {}
        for key, what in unsupported([s for s in seen.values() if s.fate.judged]).items():
            refused.setdefault(what, []).append(seen[key])
        skipped = {id(s.call) for group in refused.values() for s in group}
        judged = analysis.analyse(function, [c for c in calls if id(c) not in skipped], result)
        if judged.status == analysis.GRADING_ERROR:
            return judged
        indices = [indices_check(s) for key, s in seen.items()
                   if key not in skipped and s.call.kwargs.get("return_indices") and not s.call.grad
                   and s.fate.judged and not s.problem()]
        judged.checks += indices
        failed = [check.detail for check in indices if not check.passed]
        if failed:
            judged.status = "fail" if judged.status == "pass" else judged.status
            judged.diagnoses.append(f"return_indices=True: {failed[0]}")
        judged.notes += [refused_note(what, group) for what, group in refused.items()]
        return judged
    except Exception as error:  # noqa: BLE001 - a bug of the checker's: this function's grading error
        return analysis.checker_failure(function.name, error)


def plan(function: Function, settings, material, found: dict | None, style) -> tuple[list, str | None]:
    from .. import plans     # plans imports this package: imported when first needed
    return plans.finish(plans.functional_calls(function, settings, material())), None


def default_rubric(report: dict):
    """A point per function the module defines (every check but speed; the from-scratch gate), one for training."""
    from ..rubric import functions_rubric
    return functions_rubric([name for name, entry in report["functions"].items()
                             if entry["status"] != "missing" and name in FUNCTIONS],
                            training="training" in report["functions"])


FORM = Form("functional", "torch.nn.functional's names and signatures: conv2d(input, weight, bias, stride, padding, "
                          "dilation, groups)...",
            FUNCTIONS, plan, default_rubric, run_call=run_call, analyse=analyse, trains=True, optional=True)

"""Judge one function from what its children recorded: checks, status, diagnoses, timings.

Pure functions of the plan (:mod:`.plans`), the schedule's fates and the records
(:mod:`.runner`): native PyTorch's truth comes from :mod:`.oracle` in this process, every tensor
comparison from simple_conv_net.compare. Only what ran is judged: a call that returned (or raised,
or crashed the process) makes checks; one that did not run for lack of time, or was stopped at its
limit, is listed as not checked, with why, and counts neither for nor against. The checks of a
function, by the first word of their names (the rubric selects by it):

type        every call returns a torch.Tensor (diff_mse: a number)
shape       every output has native's shape
dtype       float32 in, float32 out
device      the output is on the inputs' device (cpu; cuda when there is one)
values      one per call: the output against the float64 truth (compare's rule), the handout's
            diff_mse < 1e-6 shown beside it
arguments   no input is changed by a call (none but the running statistics batch norm updates)
repeatable  the same call twice gives the same output
graph       with inputs that require grad, the output is on the autograd graph and every input
            gets a gradient
gradient    one per differentiated input and call: against the float64 truth; at a kink (ReLU at
            0, a max-pool tie) any subgradient passes, with a note
from-scratch  the native op the function is meant to compute did not run (:mod:`.scratch`); a
            convolution also gets "im2col by hand": its columns not built by PyTorch's im2col
speed       median seconds per call, and native's in the same child

The graded shapes decide: a call on small shapes that fails, whose mirror at the graded shapes
(the same case) ran and passes, does not count; a note says the function hard-codes the graded
(homework's) sizes. A function of forward passes only (the handout's scalar forms: task 1) has
its gradient findings as notes, not checks. An output of another dtype than float32 or float64
reaches this process as float64 values (see runner): it fails the dtype check, and its value
checks say how it was compared. An exception in this module (a bug of the checker's) makes that
function "not graded", with a grading error that says so.
"""

from __future__ import annotations

import statistics
import traceback
from dataclasses import dataclass, field
from functools import cached_property

import torch

from ..compare import Comparison, compare
from . import diagnose, forms, kinks, scratch
from .forms import Function
from .oracle import Truth, native_seconds, truth_of
from .plans import Call
from .schedule import Fate, Result, seconds_text
from .text import error_text, evidence, first_line, number

HANDOUT_MSE = 1e-6   # the homework's convention: diff_mse below this is "the same"


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


GRADING_ERROR = "not graded"   # the status of a function the checker could not judge through no fault of its own


@dataclass
class FunctionResult:
    name: str
    status: str                      # pass, fail, missing, error, timeout, crashed or "not graded"
    checks: list = field(default_factory=list)
    diagnoses: list = field(default_factory=list)
    seconds: float = 0.0
    notes: list = field(default_factory=list)
    signature: str | None = None
    output: str = ""                 # what the candidate printed (both ends kept)
    timing: dict = field(default_factory=dict)   # label -> {"layer", "images", "seconds", "native", "backward"}
    not_checked: list = field(default_factory=list)   # [{"name", "detail"}]: calls that did not run, and why
    grading_error: str | None = None  # why the checker could not judge it (not the code's fault), if so
    calls: list = field(default_factory=list)   # [{"name", "state", "seconds"}]: what became of each call, how long


@dataclass
class Seen:
    """One planned call, what became of it (see schedule.Fate), and what the child recorded of it."""

    call: Call
    record: dict | None
    fate: Fate = field(default_factory=lambda: Fate("returned"))

    @property
    def output(self) -> torch.Tensor | None:
        return None if self.record is None else self.record.get("output")

    @property
    def info(self) -> dict:
        return (self.record or {}).get("output_info", {})

    @property
    def error(self) -> dict | None:
        return None if self.record is None else self.record.get("error")

    def problem(self) -> str | None:
        """Why this call gave no tensor to check, or None."""
        if self.record is None:
            return self.fate.reason or "no record"
        if self.error:
            return f"raised {error_text(self.error)}"
        if self.output is None:
            kind = self.info.get("type", "nothing")
            if "values" in self.info:          # a tensor whose values cannot be compared (complex, sparse)
                return f"returned {self.info['values']}: {self.info.get('repr', '')}"
            return "returned None" if kind == "NoneType" else f"returned a {kind}: {self.info.get('repr', '')}"
        return None

    @cached_property
    def truth(self) -> Truth:
        return truth_of(self.call)

    @cached_property
    def comparison(self) -> Comparison:
        native = None if self.truth.native is None else self.truth.native.output
        return compare(self.truth.exact.output, self.output, native, self.truth.dtype)

    def gradient(self, name: str) -> torch.Tensor | None:
        return ((self.record or {}).get("grads") or {}).get(name)

    @cached_property
    def gradient_comparisons(self) -> dict:
        """input name -> Comparison of the candidate's gradient with the truth, for the gradients it has, each in its
        input's dtype (log_softmax's float64 output of a float32 input has a float32 gradient)."""
        found = {}
        for name in self.call.grad:
            if self.gradient(name) is not None:
                native = None if self.truth.native is None else self.truth.native.grads[name]
                dtype = self.truth.dtype if native is None else native.dtype
                found[name] = compare(self.truth.exact.grads[name], self.gradient(name), native, dtype)
        return found


def value_detail(result: Comparison) -> str:
    if result.problem:
        return result.problem
    mse = f"diff_mse {number(result.diff_mse)}, {'' if result.diff_mse < HANDOUT_MSE else 'not '}< 1e-6 as the handout asks"
    text = (f"max rel {number(result.max_rel)} {'<=' if result.passed else '>'} {number(result.tolerance)} "
            f"(max abs {number(result.max_abs)}; {mse})")
    return text + evidence(result)


def _failing(name: str, problems: list[str], good: str) -> Check:
    return Check(name, not problems, "; ".join(problems) if problems else good)


# ----------------------------------------------------------------------------- the checks


def type_check(seen: list[Seen], numbers_ok: bool) -> Check:
    problems = []
    for s in seen:
        kind = s.info.get("type", "")
        tensor = kind.startswith("torch.") and s.output is not None and "dtype" in s.info and "device" in s.info
        if s.problem():
            problems.append(f"{s.call.label}: {s.problem()}")
        elif not tensor and not (numbers_ok and s.output is not None and s.output.dim() == 0):
            problems.append(f"{s.call.label}: returned a {kind}, not a torch.Tensor")
    return _failing("type", _dedupe(problems), "every call returns a torch.Tensor" if not numbers_ok
                    else "every call returns a number")


def _dedupe(problems: list[str], keep: int = 4) -> list[str]:
    """The problems ('label: what'), the labels of each 'what' together, at most ``keep`` of them."""
    grouped = {}
    for problem in problems:
        label, _, what = problem.partition(": ")
        grouped.setdefault(what, []).append(label)
    texts = [f"{what} ({', '.join(labels[:3])}{f' and {len(labels) - 3} more' if len(labels) > 3 else ''})"
             for what, labels in grouped.items()]
    return texts[:keep] + ([f"and {len(texts) - keep} more"] if len(texts) > keep else [])


def _returned(seen: list[Seen]) -> list[Seen]:
    return [s for s in seen if not s.problem()]


def _property_check(name: str, seen: list[Seen], wrong, good: str) -> Check | None:
    """A property of the outputs the calls returned (calls that raised are the type check's business); None when no
    call returned a tensor."""
    returned = _returned(seen)
    if not returned:
        return None
    problems = [f"{s.call.label}: {wrong(s)}" for s in returned if wrong(s)]
    return _failing(name, _dedupe(problems), good)


def shape_check(seen: list[Seen]) -> Check:
    def wrong(s):
        expected = s.truth.exact.output.shape
        return None if s.output.shape == expected else f"shape {list(s.output.shape)}, expected {list(expected)}"
    return _property_check("shape", seen, wrong, "every output has native's shape")


def dtype_check(seen: list[Seen]) -> Check | None:
    """Of every tensor returned, comparable or not (a complex one has a dtype too)."""
    tensors = [s for s in seen if "dtype" in s.info and not s.error]
    if not tensors:
        return None
    problems = [f"{s.call.label}: {s.info['dtype']} out for {s.truth.dtype} in" for s in tensors
                if s.info["dtype"] != str(s.truth.dtype)]
    return _failing("dtype", _dedupe(problems), "the output has the inputs' dtype")


def scratch_checks(function: Function, seen: list[Seen]) -> list[Check]:
    """The from-scratch checks of one function (see :mod:`.scratch`); none when no watched call ran."""
    checks = []
    for rule in scratch.rules(function):
        names = scratch.native_names(rule, seen)
        if names is None:
            continue
        if names:
            checks.append(Check(rule.check, False, f"PyTorch's own {rule.what} ran: {', '.join(names)}"))
        else:
            ops = scratch.recorded(seen)
            checks.append(Check(rule.check, True, f"no native {rule.what} among the "
                                                  f"{len({n for o in ops for n in o['functions']})} torch functions "
                                                  f"and {len({n for o in ops for n in o['operators']})} operators "
                                                  f"its {len(ops)} watched calls ran"))
    return checks


def device_check(seen: list[Seen], device: str) -> Check:
    def wrong(s):
        if not str(s.info.get("device", "")).startswith(device):
            return f"output on {s.info.get('device')}"
        if device != "cpu" and not s.comparison.passed:  # the values too: the other checks are all on the CPU
            return value_detail(s.comparison)
        return None
    return _property_check(f"device {device}", seen, wrong, f"the output is on {device}, where the inputs are")


def value_checks(seen: Seen) -> list[Check]:
    if seen.problem():
        return [Check(f"values {seen.call.label}", False, seen.problem())]
    how = f"{seen.info['values']}: " if "values" in seen.info else ""     # an output of another dtype
    checks = [Check(f"values {seen.call.label}", seen.comparison.passed, how + value_detail(seen.comparison))]
    for name in seen.call.updates:   # batch norm's running statistics, updated in place
        native = None if seen.truth.native is None else seen.truth.native.updated[name]
        result = compare(seen.truth.exact.updated[name], seen.record["args_after"][name], native, seen.truth.dtype)
        checks.append(Check(f"values {name} after {seen.call.label}", result.passed, value_detail(result)))
    return checks


def arguments_check(seen: list[Seen]) -> Check | None:
    returned = _returned(seen)
    if not returned:
        return None
    problems = [f"{s.call.label}: '{name}' changed in {count} entries" for s in returned
                for name, count, _ in diagnose.changed_arguments(s)]
    return _failing("arguments unchanged", _dedupe(problems), "no call changes its arguments")


def repeat_check(seen: list[Seen]) -> list[Check]:
    by_label = {s.call.label: s for s in seen}
    checks = []
    for s in seen:
        if s.call.twin is None:
            continue
        twin = by_label.get(s.call.twin)
        if twin is None or s.problem() or twin.problem():
            continue      # a call that raised fails its own checks; only two outputs can be compared
        difference = diagnose.twin_difference(s, twin)
        checks.append(Check("repeatable", difference is None, "two calls on the same input give the same output"
                            if difference is None else f"two calls on the same input differ in {difference[0]} "
                                                       f"entries"))
    return checks


def graph_problem(s: Seen) -> str | None:
    """Why the gradients of a call with requires_grad inputs cannot be checked, or None."""
    if s.problem():
        return s.problem()
    if not s.info.get("requires_grad"):
        return "the output does not require grad: it is cut from the autograd graph"
    if s.info.get("is_leaf"):
        return "the output is a new leaf tensor: no gradient reaches the inputs"
    backward = s.record.get("backward") or {}
    if backward.get("error"):
        return f"backward raised {backward['error']['type']}: {first_line(backward['error']['message'])}"
    if not backward.get("ran"):
        return backward.get("reason", "backward did not run")
    missing = [name for name, grad in s.record["grads"].items() if grad is None]
    if missing:
        return f"no gradient reaches {', '.join(repr(m) for m in missing)}"
    return None


def graph_check(seen: list[Seen]) -> Check:
    problems = [f"{s.call.label}: {graph_problem(s)}" for s in seen if graph_problem(s)]
    return _failing("graph connected", _dedupe(problems),
                    "with inputs that require grad, every input gets a gradient through the output")


def gradient_checks(s: Seen, notes: list) -> list[Check]:
    checks = []
    for name in s.call.grad:
        check_name = f"gradient {name} {s.call.label.removesuffix(' (grad)')}"
        grad = s.gradient(name)
        if grad is None:
            checks.append(Check(check_name, False, graph_problem(s) or f"no gradient reaches '{name}'"))
            continue
        result = s.gradient_comparisons[name]
        if result.passed:
            checks.append(Check(check_name, True, value_detail(result)))
            continue
        note = kinks.kink_note(s, name, grad)
        if note:
            if not any(n.split(":")[0] == note.split(":")[0] for n in notes):  # one note of each kind
                notes.append(note)
            checks.append(Check(check_name, True, f"matches native except at kinks, where any subgradient is valid: "
                                                  f"{note}"))
        else:
            checks.append(Check(check_name, False, value_detail(result)))
    return checks


def timing(seen: list[Seen]) -> dict:
    """label -> median seconds of the candidate and of native (same child, interleaved), for timed calls; for a
    SimpleConvNet layer whose timed call did not run, its largest call that returned, with native timed here
    ("estimated": True), and for a layer none of whose calls returned, the schedule's estimate of its smallest
    ("extrapolated": True), so a slow function still has its epoch time."""
    found = {}
    for s in seen:
        if s.call.timed and not s.problem() and s.record["seconds"] and s.record["native_seconds"]:
            found[s.call.label] = {"layer": s.call.layer, "images": s.call.inputs["input"].shape[0],
                                   "seconds": statistics.median(s.record["seconds"]),
                                   "native": statistics.median(s.record["native_seconds"]),
                                   "backward": bool(s.call.grad) and graph_problem(s) is None}
    timed = {t["layer"] for t in found.values()}
    for layer in dict.fromkeys(s.call.layer for s in seen if s.call.layer and s.call.layer not in timed):
        returned = [s for s in seen if s.call.layer == layer and not s.problem() and s.record["seconds"]]
        guessed = [s for s in seen if s.call.layer == layer and s.fate.estimate is not None and not s.call.grad]
        if returned:
            s = max(returned, key=lambda s: (s.call.n, bool(s.call.grad)))
            found[s.call.label] = {"layer": layer, "images": s.call.n, "seconds": min(s.record["seconds"]),
                                   "native": native_seconds(s.call),
                                   "backward": bool(s.call.grad) and graph_problem(s) is None, "estimated": True}
        elif guessed:
            s = min(guessed, key=lambda s: s.call.n)
            found[s.call.label] = {"layer": layer, "images": s.call.n, "seconds": s.fate.estimate / s.call.repeat,
                                   "native": native_seconds(s.call), "backward": False, "estimated": True,
                                   "extrapolated": True}
    return found


def speed_checks(seen: list[Seen], times: dict) -> list[Check]:
    """A check of each timed call that returned (one that raised fails its type check; one that did not run is
    not checked)."""
    checks = []
    for s in seen:
        if not s.call.timed or s.call.label not in times or times[s.call.label].get("estimated"):
            continue
        name = f"speed {s.call.label.removeprefix('speed ')}"
        t = times[s.call.label]
        what = "forward + backward" if t["backward"] else "forward"
        checks.append(Check(name, True, f"{t['seconds'] * 1e3:.3g} ms per call ({what}), native "
                                        f"{t['native'] * 1e3:.3g} ms: {t['seconds'] / t['native']:.3g}x native"))
    return checks


def im2col_layouts(columns: torch.Tensor) -> dict:
    """The layouts of im2col's output a student may choose, from native's [N, C*K*K, L] (or [C*K*K, L])."""
    columns = columns if columns.dim() == 3 else columns.unsqueeze(0)
    n, rows, length = columns.shape
    layouts = {"[N, C*K*K, L]": columns, "[N, L, C*K*K]": columns.transpose(1, 2),
               "[C*K*K, N*L]": columns.permute(1, 0, 2).reshape(rows, n * length),
               "[N*L, C*K*K]": columns.transpose(1, 2).reshape(n * length, rows)}
    if n == 1:
        layouts.update({"[C*K*K, L]": columns[0], "[L, C*K*K]": columns[0].t()})
    return layouts


def _im2col_layout(s: Seen) -> tuple[str | None, str]:
    """(the layout im2col's output matches, or None; what was found)."""
    if s.problem():
        return None, s.problem()
    for layout, expected in im2col_layouts(s.truth.exact.output).items():
        if expected.shape == s.output.shape:
            result = compare(expected, s.output, dtype=s.truth.dtype)
            if result.passed:
                return layout, value_detail(result)
    return None, (f"shape {list(s.output.shape)}: none of the layouts of native's windows "
                  f"({', '.join(im2col_layouts(s.truth.exact.output))}) with the right values")


def im2col_checks(seen: list[Seen]) -> list[Check]:
    """im2col, whose form students choose: a batch [N, C, H, W] or one image [C, H, W] in, any usual
    layout out (one column or row per window, entries in (c, i, j) order)."""
    conventions = {"a batch [N, C, H, W]": [s for s in seen if s.call.inputs["input"].dim() == 4],
                   "one image [C, H, W]": [s for s in seen if s.call.inputs["input"].dim() == 3]}
    found = {name: [(s.call.label, *_im2col_layout(s)) for s in calls] for name, calls in conventions.items()}
    working = [(name, results) for name, results in found.items()
               if results and all(layout for _, layout, _ in results)]
    if working:
        name, results = working[0]
        check = Check("values", True, f"takes {name}; " + "; ".join(f"{label}: layout {layout}"
                                                                     for label, layout, _ in results))
    else:
        check = Check("values", False, "; ".join(f"{label}: {detail}" for results in found.values()
                                                 for label, layout, detail in results if not layout))
    return [c for c in (check, arguments_check(seen), *scratch_checks(forms.HANDOUT["im2col"], seen)) if c is not None]


# ----------------------------------------------------------------------------- one function


def seen_calls(calls: list[Call], result: Result) -> list[Seen]:
    return [Seen(call, result.records.get(call.label), result.fates.get(call.label, Fate("unreached", "not run")))
            for call in calls]


def _passes(s: Seen, by_label: dict) -> bool:
    """Whether a call came out right: its values (and gradients), or, for a repeat, the same output twice."""
    if s.problem():
        return False
    if s.call.twin:
        twin = by_label.get(s.call.twin)
        return twin is not None and not twin.problem() and diagnose.twin_difference(s, twin) is None
    if not s.comparison.passed:
        return False
    if not s.call.grad:
        return True
    return graph_problem(s) is None and all(result.passed or kinks.kink_note(s, name, s.gradient(name))
                                            for name, result in s.gradient_comparisons.items())


def _wrong(s: Seen) -> str:
    if s.problem():
        return s.problem()
    if s.call.twin:
        return "not the output of the call it repeats"
    if not s.comparison.passed:
        return value_detail(s.comparison)
    return graph_problem(s) or "a wrong gradient"


def hard_coded(judged: list[Seen]) -> tuple[list[Seen], str | None]:
    """(the calls that count, a note): small-shape calls that fail while their mirror, the same case at the
    graded shapes, ran and passes, do not count: the graded shapes decide (see the module doc)."""
    by_label = {s.call.label: s for s in judged}
    yielded = [s for s in judged if s.call.mirror and s.call.mirror in by_label and not _passes(s, by_label)
               and _passes(by_label[s.call.mirror], by_label)]
    if not yielded:
        return judged, None
    shown = "; ".join(f"{s.call.label}: {_wrong(s)}" for s in yielded[:2])
    return [s for s in judged if s not in yielded], (
        f"wrong on the small shapes the checker tries first ({shown}) but right on the homework's: it hard-codes the "
        f"homework's sizes (fine for the homework; it would fail on other shapes)")


def _forward_only_notes(seen: list[Seen]) -> list[str]:
    """What the gradient calls of a function of forward passes only (task 1) found, as notes."""
    notes = []
    for s in seen:
        if not s.call.grad:
            continue
        problem = graph_problem(s)
        if problem:
            notes.append(f"no gradient flows through this function ({problem}): fine for task 1, which asks for "
                         f"forward passes; it could not be trained")
        elif s.comparison.passed and any(not r.passed and not kinks.kink_note(s, n, s.gradient(n))
                                         for n, r in s.gradient_comparisons.items()):
            notes.append("its gradient is wrong (autograd through it does not match native's): fine for task 1, "
                         "which asks for forward passes; it could not be trained")
    return list(dict.fromkeys(notes))


def checks_of(function: Function, seen: list[Seen], notes: list, timed: dict | None = None,
              watched: list[Seen] | None = None) -> list[Check]:
    """Every check of one function from the calls that ran (see the module doc); ``timed``: its :func:`timing`,
    if already known; ``watched``: the calls whose recorded ops count (default ``seen``: a call on small shapes
    that does not count for its values still shows what the function runs)."""
    if function.op == "im2col":
        return im2col_checks(seen)
    watched = seen if watched is None else watched
    if function.scalar:
        notes += _forward_only_notes(seen)
        seen, watched = ([s for s in calls if not s.call.grad] for calls in (seen, watched))
    checks = [type_check(seen, numbers_ok=function.op == "diff_mse")]
    tensors = [s for s in seen if s.call.case != "cuda"]
    if function.op != "diff_mse":
        checks += [shape_check(tensors), dtype_check(tensors), device_check(tensors, "cpu")]
        cuda = [s for s in seen if s.call.case == "cuda"]
        if cuda:
            checks.append(device_check(cuda, "cuda"))
    for s in seen:
        if not s.call.grad and s.call.case not in ("repeat", "cuda", "speed"):
            checks += value_checks(s)
    checks.append(arguments_check(seen))
    checks += repeat_check(seen)
    differentiated = [s for s in seen if s.call.grad]
    if differentiated:
        checks.append(graph_check(differentiated))
        for s in differentiated:
            checks += gradient_checks(s, notes)
    checks += scratch_checks(function, watched) + speed_checks(seen, timing(seen) if timed is None else timed)
    return [check for check in checks if check is not None]     # a property no returned call could show


def status_of(checks: list[Check], seen: list[Seen], ended: str | None) -> str:
    """timeout (its first call did not return), crashed, error (every call raised, or the import did), the grading
    error's status, or pass / fail by the checks of what ran."""
    if ended in ("timeout", "crashed"):
        return ended
    if ended == "environment":
        return GRADING_ERROR
    if ended == "import" or (seen and all(s.error for s in seen)):
        return "error"
    return "pass" if all(c.passed for c in checks) else "fail"


def analyse(function: Function, calls: list[Call], result: Result) -> FunctionResult:
    """Checks, status and diagnoses of one function from its schedule's result (see :mod:`.schedule`); an error
    of the checker's own while it judges them makes it "not graded", with a grading error that says so."""
    try:
        return _analyse(function, calls, result)
    except Exception as error:  # noqa: BLE001 - a bug of the checker's: this function's grading error, not the run's end
        return checker_failure(function.name, error)


def checker_failure(name: str, error: Exception) -> FunctionResult:
    """The result of a function the checker could not judge, because of a bug of its own."""
    where = "".join(traceback.format_exception(type(error), error, error.__traceback__)[-3:]).strip()
    said = f"checker error: {type(error).__name__}: {first_line(str(error))}"
    return FunctionResult(name, GRADING_ERROR, grading_error=said,
                          diagnoses=[f"{said}: the checker could not analyse this function. This is a bug in the "
                                     f"checker, not a fault of the submission, and costs it nothing: the item is not "
                                     f"graded. Please report it with the traceback's last lines: {where}"])


def _not_checked(seen: list[Seen]) -> list[dict]:
    return [{"name": s.call.label, "detail": s.fate.reason or "not run"} for s in seen if not s.fate.judged]


def slow_note(seen: list[Seen], result: Result) -> str | None:
    """Slow is a finding, not a failure: how long its calls took, and what did not run for lack of time."""
    late = [s for s in seen if s.fate.state in ("skipped", "stopped")]
    if not late or result.ended:
        return None
    returned = [s for s in seen if s.fate.state == "returned" and s.fate.seconds is not None]
    slowest = max(returned, key=lambda s: s.fate.seconds, default=None)
    took = f"; its slowest call that returned, {slowest.call.label}, took {seconds_text(slowest.fate.seconds)}" \
        if slowest else ""
    return (f"slow, which is no fault: {len(late)} of its {len(seen)} calls did not run for lack of time (the budget "
            f"per function, --timeout, and per call, --call-timeout){took}; what ran is judged, what did not is "
            f"listed as not checked and counts neither for nor against")


def _analyse(function: Function, calls: list[Call], result: Result) -> FunctionResult:
    notes = []
    seen = seen_calls(calls, result)
    judged = [s for s in seen if s.fate.judged]
    counted, note = hard_coded(judged)
    timed = timing(counted)
    checks = checks_of(function, counted, notes, timed, watched=judged) if judged else []
    status = status_of(checks, judged, result.ended)
    found = FunctionResult(function.name, status, checks, notes=notes + [n for n in (note, slow_note(seen, result))
                                                                         if n],
                           timing=timed, not_checked=_not_checked(seen), seconds=result.seconds, output=result.output,
                           calls=[{"name": s.call.label, "state": s.fate.state,
                                   "seconds": None if s.fate.seconds is None else round(s.fate.seconds, 4)}
                                  for s in seen])
    if status == GRADING_ERROR:
        found.grading_error = f"the child process did not start: {result.reason}"
    if status != "pass":
        found.diagnoses = diagnose.diagnoses(function, counted, result)
    return found


def unavailable(function: Function, status: str, reason: str) -> FunctionResult:
    """A function that was not run (missing, not callable, or its module did not import): nothing to judge."""
    return FunctionResult(function.name, status, diagnoses=[reason])

"""Check one target: find its functions, run each in its own child, judge, score; the report as a dict.

1. A discovery child imports the module and lists which of the checker's names it defines, with
   their signatures (an import that fails, hangs or crashes is every function's status).
2. The form is the one whose names it defines (or ``--form``).
3. Each defined function gets its plan (:mod:`.plans`) and its own child; up to ``jobs`` children
   run at once, training (task 3) among them, and native PyTorch's training in this process.
4. Each function is judged from its records (:mod:`.analysis`), the rubric scores the lot.
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import torch

from . import plans, sandbox, training
from .analysis import FunctionResult, analyse, checker_failure, first_line, unavailable
from .diagnose import import_error_text
from .forms import ALL_NAMES, FORMS, Function, detect_form, names_in_source
from .report import function_entry, rescore
from .rubric import Rubric, functions_rubric, load
from .targets import Target, TargetError


@dataclass(frozen=True)
class Options:
    settings: plans.Settings = field(default_factory=plans.Settings)
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    jobs: int = os.cpu_count() or 1
    form: str | None = None


@functools.lru_cache(maxsize=4)
def material(settings: plans.Settings) -> plans.Material:
    return plans.material(settings)


def _positional_range(parameters: list) -> tuple[int, float]:
    """(required, most) positional arguments a signature takes."""
    positional = [p for p in parameters if p[1] in ("POSITIONAL_ONLY", "POSITIONAL_OR_KEYWORD")]
    most = float("inf") if any(p[1] == "VAR_POSITIONAL" for p in parameters) else len(positional)
    return sum(not has_default for _, _, has_default in positional), most


def call_style(function: Function, found: dict) -> tuple[bool | None, str | None]:
    """(whether to pass the handout's device argument, or None if the signature cannot take the handout's
    arguments at all; a note on a signature that differs from the handout's)."""
    parameters = found.get("parameters")
    if parameters is None:
        return True, None
    wanted = len(function.parameters)
    low, high = _positional_range(parameters)
    differs = f"signature {function.name}{found['text']} differs from the handout's " \
              f"{function.name}({', '.join(function.parameters)})"
    if low <= wanted <= high:
        return True, differs if [p[0] for p in parameters] != list(function.parameters) else None
    if "device" in function.parameters and low <= wanted - 1 <= high:
        return False, f"{differs}: called without the device argument"
    return None, f"{differs}: it cannot be called with the handout's {wanted} arguments"


def plan(function: Function, form: str, options: Options, found: dict | None, with_device: bool = True):
    """(calls, why there are none) for one function, two of them watched (see plans.watch)."""
    settings, stuff = options.settings, material(options.settings)
    if function.op == "diff_mse":
        calls, why = plans.diff_mse_calls(settings), None
    elif function.op == "conv_weight2rows":
        calls, why = plans.conv_weight2rows_calls(settings, stuff), None
    elif function.op == "im2col":
        calls, why = plans.im2col_calls(settings, (found or {}).get("parameters"))
    elif form == "handout":
        calls, why = plans.handout_calls(function, settings, stuff, with_device), None
    else:
        calls, why = plans.functional_calls(function, settings, stuff), None
    return plans.watch(calls), why


def _output(run: sandbox.ChildRun) -> str:
    return run.stdout + (f"\n[stderr]\n{run.stderr}" if run.stderr.strip() else "")


def check_function(function: Function, calls: list, target: Target, options: Options) -> FunctionResult:
    request = {"function": function.name, "calls": [call.request() for call in calls]}
    run = sandbox.run_child("calls", request, target, options.limits)
    result = analyse(function, calls, run.records, run.outcome, run.reason)
    result.seconds, result.output = run.seconds, _output(run)
    return result


def _discover(target: Target, options: Options) -> tuple[dict, tuple[str, str] | None, str]:
    """(name -> what the module defines, (status, reason) if it cannot be checked at all, its output)."""
    run = sandbox.run_child("discover", {"names": list(ALL_NAMES)}, target, options.limits)
    if run.outcome != "finished":
        return {}, (run.outcome, f"importing the module: {run.reason}"), _output(run)
    if "import" in run.records:
        error = run.records["import"]["error"]
        top = target.module.split(".")[0]
        if target.kind == "module" and error["type"] == "ModuleNotFoundError" and f"'{top}" in error["message"]:
            raise TargetError(f"target {target.text!r}: no such file or folder, and no module of that name "
                              f"can be imported ({first_line(error['message'])})")
        return {}, ("error", import_error_text(error)), _output(run)
    return run.records["discovery"], None, _output(run)


def _form(options: Options, found: dict, target: Target) -> str:
    if options.form:
        return options.form
    names = found or (names_in_source(target.file) if target.file else None) or ()
    return detect_form(names) or "handout"


def _plan_all(form: str, found: dict, failure, options: Options):
    """(results of the functions that cannot run, [(function, calls, note)] of those that can, how each
    handout function takes the device argument)."""
    results, work, styles = {}, [], {}
    for name, function in FORMS[form].items():
        calls, why = plan(function, form, options, found.get(name))
        if failure:
            results[name] = unavailable(function, calls, *failure)
        elif name not in found:
            results[name] = unavailable(function, calls, "missing", f"{name} is not defined in the module")
        elif not found[name]["callable"]:
            results[name] = unavailable(function, calls, "error", f"{name} is a {found[name]['type']}, not a function")
        else:
            with_device, note = call_style(function, found[name]) if form == "handout" else (True, None)
            styles[name] = with_device
            if with_device is None or why:
                results[name] = unavailable(function, calls, "error" if with_device is None else "fail", note or why)
            else:
                # the calls were planned for a function that takes the device; plan again only if it does not
                work.append((function, calls if with_device else plan(function, form, options, found[name], False)[0],
                             note))
    return results, work, styles


def check(target: Target, options: Options, rubric: Rubric | None = None, progress=None) -> dict:
    """Check every function of ``target``; the report (see :mod:`.report`), scored with ``rubric``."""
    start = time.monotonic()
    sandbox.STOPPING.clear()
    found, failure, import_output = _discover(target, options)
    form = _form(options, found, target)
    if not found and not failure:
        raise TargetError(f"target {target.text!r} defines none of the handout's functions "
                          f"({', '.join(FORMS['handout'])}) nor torch.nn.functional's ({', '.join(FORMS['functional'])})")
    results, work, styles = _plan_all(form, found, failure, options)
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        try:
            trained = pool.submit(run_training, form, found, failure, styles, target, options) \
                if options.settings.train_steps else None
            futures = {function.name: (pool.submit(check_function, function, calls, target, options), note)
                       for function, calls, note in sorted(work, key=lambda w: not w[0].scalar)}
            for name, (future, note) in futures.items():
                results[name] = future.result()
                results[name].notes[:0] = [note] if note else []
                if progress:
                    progress(name, results[name].status)
            trained = trained.result() if trained else None
        except BaseException:   # Ctrl-C: start no more children and stop those running, so the pool ends now
            pool.shutdown(wait=False, cancel_futures=True)
            sandbox.stop_all()
            raise
    for name, entry in results.items():
        entry.signature = found.get(name, {}).get("text")
    ordered = {name: results[name] for name in FORMS[form]}
    estimates = training.epoch_estimates(ordered, form)
    if trained is not None:
        ordered["training"] = trained.analyse(estimates, form)
        if progress:
            progress("training", ordered["training"].status)
    report = {"target": target.text, "form": form,
              "functions": {name: function_entry(result) for name, result in ordered.items()},
              "epoch": estimates, "notes": _notes(options),
              "seconds": round(time.monotonic() - start, 1), "import_output": import_output,
              "settings": settings_record(options), "fingerprint": target.fingerprint()}
    return rescore(report, rubric or default_rubric(report))


def _notes(options: Options) -> list[str]:
    """What this run could not check, for every function alike."""
    notes = [] if material(options.settings).note is None else [material(options.settings).note]
    if not torch.cuda.is_available():
        notes.append("device cuda: not checked (no CUDA device on this machine)")
    if not options.settings.train_steps:
        notes.append("training not run (--train-steps 0)")
    return notes


CHECKS_VERSION = 2   # raised when the checks change, so a batch regrades what an older checker graded


def settings_record(options: Options) -> dict:
    """The settings a report depends on (a batch regrades a submission whose report had others)."""
    return asdict(options.settings) | {"timeout": options.limits.timeout, "memory_mb": options.limits.memory_mb,
                                       "form": options.form, "checks": CHECKS_VERSION}


def default_rubric(report: dict) -> Rubric:
    """homework for the handout form; a point per function defined (and for training) for the functional form."""
    if report["form"] == "handout":
        return load("homework")
    return functions_rubric([name for name, entry in report["functions"].items()
                             if entry["status"] != "missing" and name in FORMS["functional"]],
                            training="training" in report["functions"])


@dataclass
class TrainingRun:
    """The candidate's training (a child's records) and native's, or why there is none."""

    records: dict = field(default_factory=dict)
    native: dict | None = None
    outcome: str = "finished"
    reason: str | None = None
    unavailable: str | None = None
    output: str = ""

    def analyse(self, estimates: dict, form: str) -> FunctionResult:
        try:
            result = training.analyse_training(self.records, self.native, estimates, form, self.outcome, self.reason,
                                               self.unavailable)
        except Exception as error:  # noqa: BLE001 - a bug of the checker's: the training entry's status
            result = checker_failure("training", error)
        result.output = self.output
        return result


def run_training(form: str, found: dict, failure, styles: dict, target: Target, options: Options) -> TrainingRun:
    """Task 3: the candidate's net in a child, then native's here (the same weights and batches)."""
    missing = [name for name in training.needed(form).values() if name not in found or not found[name]["callable"]]
    if material(options.settings).mnist is None:
        return TrainingRun(unavailable="no MNIST")
    if failure:
        return TrainingRun(unavailable=f"the module cannot be checked ({failure[0]})")
    if missing:
        return TrainingRun(unavailable=f"needs {', '.join(missing)}, which the module does not define")
    request = training.request(form, material(options.settings).state, options.settings, styles)
    run = sandbox.run_child("train", request, target, options.limits)
    native = training.native_run(request, stop=sandbox.STOPPING.is_set)   # ends early if the checker is stopped
    return TrainingRun(run.records, native, run.outcome, run.reason, output=_output(run))

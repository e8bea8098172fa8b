"""Check one target: find its functions, run each within its time budget, judge, score; the report as a dict.

1. A discovery child imports the module and lists which of the checker's names it defines, with
   their signatures (an import that fails, hangs or crashes is every function's status; a child
   that cannot start at all is a grading error).
2. The form is the one whose names it defines (or ``--form``).
3. Each defined function (or each named by ``--only``) gets its plan (:mod:`.plans`), run by its
   schedule (:mod:`.schedule`) in one child or a few, within its budget; up to ``jobs`` functions
   at once, training (task 3) among them, and native PyTorch's training in this process.
4. Each function is judged from what ran (:mod:`.analysis`), the rubric scores the lot; what the
   checker could not judge through no fault of the submission's is a grading error.
"""

from __future__ import annotations

import functools
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace

import torch

from . import plans, sandbox, schedule, training
from .analysis import GRADING_ERROR, FunctionResult, checker_failure, first_line, unavailable
from .diagnose import import_error_text
from .forms import FORMS, Function, all_names, detect_form, form_request, names_in_source
from .forms.handout import call_style  # noqa: F401 - the handout's signature rule, as the tests use it
from .report import function_entry, rescore
from .rubric import Rubric
from .targets import Target, TargetError

TRAINING = "training"


@dataclass(frozen=True)
class Options:
    settings: plans.Settings = field(default_factory=plans.Settings)
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)   # memory and threads (its timeout: discovery's)
    jobs: int = os.cpu_count() or 1
    form: str | None = None
    budget: schedule.Budget = field(default_factory=schedule.Budget)
    only: tuple | None = None       # the names to check (--only), "training" among them; None: all


@functools.lru_cache(maxsize=4)
def material(settings: plans.Settings) -> plans.Material:
    return plans.material(settings)


def plan(function: Function, form: str, options: Options, found: dict | None, style=True):
    """(calls, why there are none) for one function, in the schedule's order: the form's plan (see forms.base)."""
    return FORMS[form].plan(function, options.settings, lambda: material(options.settings), found, style)


def _output(run: sandbox.ChildRun) -> str:
    return run.stdout + (f"\n[stderr]\n{run.stderr}" if run.stderr.strip() else "")


def child_execute(function: Function, target: Target, options: Options, schedule_: schedule.Schedule,
                  form: str = "handout"):
    """The schedule's ``execute`` for one function: its calls in a child, each under the deadline the schedule's
    pace gives it (see sandbox.run_child)."""
    def execute(calls: list, pace) -> schedule.Ran:
        limit = sum(schedule_.limits.get(c.label, options.budget.call_seconds) for c in calls)
        limits = replace(options.limits, timeout=limit + schedule_.import_seconds + schedule.FINISH)
        request = {**form_request(form), "function": function.name, "calls": [call.request() for call in calls]}
        run = sandbox.run_child("calls", request, target, limits, pace=pace)
        records = {r["label"]: r for name, r in run.records.items() if name.startswith("call-")}
        error = run.records.get("import", {}).get("error")
        return schedule.Ran(records, run.outcome, run.reason, _output(run), run.seconds, error, run.ready_seconds)
    return execute


def _estimate(plan_: schedule.Schedule) -> float:
    """The schedule's estimate of the seconds its function takes, all told (no call beyond its limit)."""
    return plan_.spent + sum(min(plan_.estimates.estimate(c) or 0.0, limit) for c, limit in plan_.plan())


def check_function(function: Function, calls: list, target: Target, options: Options, import_seconds: float = 0.0,
                   progress=None, form: str = "handout") -> FunctionResult:
    """One function's calls, scheduled within its budget and judged."""
    started = time.monotonic()
    plan_ = schedule.Schedule(calls, options.budget, import_seconds)
    if progress is not None:
        def tell(call, plan_):
            done = sum(f.state == "returned" for f in plan_.result.fates.values())
            progress.call(function.name, call.label, done + 1, done + len(plan_.plan()), started, _estimate(plan_))
        plan_.progress = tell
    result = plan_.run(child_execute(function, target, options, plan_, form))
    return FORMS[form].judge(function, calls, result, options.settings)


@dataclass
class Discovery:
    found: dict = field(default_factory=dict)    # name -> what the module defines
    failure: tuple | None = None                 # (status, reason) when the module cannot be checked at all
    output: str = ""
    import_seconds: float = 0.0                  # what importing the module took in the child
    grading_error: str | None = None             # the child could not start: not the submission's fault


def _discover(target: Target, options: Options) -> Discovery:
    limits = replace(options.limits, timeout=options.budget.call_seconds)
    run = sandbox.run_child("discover", {"names": list(all_names())}, target, limits)
    seen = Discovery(output=_output(run))
    if run.ready_seconds is None and not sandbox.STOPPING.is_set():
        seen.grading_error = f"the checker's child process did not start: {run.reason}"
        seen.failure = (GRADING_ERROR, seen.grading_error)
        return seen
    seen.import_seconds = run.seconds - run.ready_seconds if run.ready_seconds is not None else 0.0
    if run.outcome != "finished":
        reason = run.reason.replace(f"did not finish in {limits.timeout:g} s",
                                    f"did not finish in {limits.timeout:g} s (--call-timeout)")
        seen.failure = (run.outcome, f"importing the module: {reason}")
    elif "import" in run.records:
        error = run.records["import"]["error"]
        top = target.module.split(".")[0]
        if target.kind == "module" and error["type"] == "ModuleNotFoundError" and f"'{top}" in error["message"]:
            raise TargetError(f"target {target.text!r}: no such file or folder, and no module of that name "
                              f"can be imported ({first_line(error['message'])})")
        seen.failure = ("error", import_error_text(error))
    else:
        seen.found = run.records["discovery"]
    return seen


def _form(options: Options, found: dict, target: Target) -> str:
    if options.form:
        return options.form
    names = found or (names_in_source(target.file) if target.file else None) or ()
    return detect_form(names) or target.form or "handout"


def _plan_all(form: str, seen: Discovery, options: Options):
    """(results of the functions that cannot run, [(function, calls, note)] of those that can, how each
    handout function takes the device argument)."""
    results, work, styles = {}, [], {}
    found = seen.found
    for name, function in FORMS[form].items():
        if options.only is not None and name not in options.only:
            continue
        if seen.failure:
            results[name] = unavailable(function, *seen.failure)
            results[name].grading_error = seen.grading_error
            continue
        if name not in found:
            results[name] = unavailable(function, "missing", f"{name} is not defined in the module")
            continue
        if not found[name]["callable"]:
            results[name] = unavailable(function, "error", f"{name} is a {found[name]['type']}, not a function")
            continue
        style, note = FORMS[form].call_style(function, found[name])
        styles[name] = style
        calls, why = plan(function, form, options, found[name], style)
        if style is None or why:
            results[name] = unavailable(function, "error" if style is None else "fail", note or why)
        else:
            work.append((function, calls, note))
    return results, work, styles


def wanted(options: Options, name: str) -> bool:
    return options.only is None or name in options.only


def check(target: Target, options: Options, rubric: Rubric | None = None, progress=None) -> dict:
    """Check every function of ``target`` (or those of ``options.only``); the report (see :mod:`.report`), scored
    with ``rubric``; ``progress``: a progress.Progress to tell what it does."""
    start = time.monotonic()
    sandbox.STOPPING.clear()
    seen = _discover(target, options)
    form = _form(options, seen.found, target)
    if not seen.found and not seen.failure:
        raise TargetError(f"target {target.text!r} defines none of the handout's functions "
                          f"({', '.join(FORMS['handout'])}) nor those of the other forms: "
                          + "; ".join(f"{name} ({', '.join(f)})" for name, f in FORMS.items() if name != "handout"))
    results, work, styles = _plan_all(form, seen, options)
    train = bool(options.settings.train_steps) and wanted(options, TRAINING) and FORMS[form].trains
    if progress is not None:
        progress.start(target.name, len(results) + len(work) + train)
        for name, result in results.items():
            progress.finished(name, result.status, 0.0)
    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        try:
            trained = pool.submit(run_training, form, seen, styles, target, options, progress) if train else None
            futures = {function.name: (pool.submit(check_function, function, calls, target, options,
                                                   seen.import_seconds, progress, form), note)
                       for function, calls, note in sorted(work, key=lambda w: not w[0].scalar)}
            for name, (future, note) in futures.items():
                results[name] = future.result()
                results[name].notes[:0] = [note] if note else []
                if progress is not None:
                    progress.finished(name, results[name].status, results[name].seconds, _summary(results[name]))
            trained = trained.result() if trained else None
        except BaseException:   # Ctrl-C: start no more children and stop those running, so the pool ends now
            pool.shutdown(wait=False, cancel_futures=True)
            sandbox.stop_all()
            raise
    for name, entry in results.items():
        entry.signature = seen.found.get(name, {}).get("text")
    ordered = {name: results[name] for name in FORMS[form] if name in results}
    estimates = training.epoch_estimates(ordered, form)
    if trained is not None:
        estimates = training.measured_epochs(estimates, trained.records, trained.native)
        ordered[TRAINING] = trained.analyse(estimates, form, ordered)
        if progress is not None:
            progress.finished(TRAINING, ordered[TRAINING].status, ordered[TRAINING].seconds)
    report = {"target": target.text, "form": form,
              "functions": {name: function_entry(result) for name, result in ordered.items()},
              "epoch": estimates, "notes": _unusable(seen) + _notes(options) + _foreign(options, form),
              "seconds": round(time.monotonic() - start, 1), "import_output": seen.output,
              "settings": settings_record(options), "fingerprint": target.fingerprint(),
              "only": None if options.only is None else list(options.only)}
    return rescore(report, rubric or default_rubric(report))


def _summary(result: FunctionResult) -> str:
    skipped = len(result.not_checked)
    return f"{sum(c.passed for c in result.checks)}/{len(result.checks)} checks pass" + \
        (f", {skipped} call{'s' * (skipped != 1)} not run for lack of time" if skipped and result.status != "timeout"
         else "")


def _unusable(seen: Discovery) -> list[str]:
    """The module cannot be imported (a Python 2 print statement...): one note that says so, before the others."""
    return [f"unusable: {seen.failure[1]}"] if seen.failure and seen.failure[0] == "error" else []


def _notes(options: Options) -> list[str]:
    """What this run could not check, for every function alike."""
    notes = [] if material(options.settings).note is None else [material(options.settings).note]
    if not torch.cuda.is_available():
        notes.append("device cuda: not checked (no CUDA device on this machine)")
    if not options.settings.train_steps:
        notes.append("training not run (--train-steps 0)")
    if options.only is not None:
        notes.append(f"only {', '.join(options.only)} checked (--only): the rubric's other items are not graded")
    return notes


def _foreign(options: Options, form: str) -> list[str]:
    """A note on the names --only gave that the module's form does not have."""
    others = [name for name in options.only or () if name not in FORMS[form] and name != TRAINING]
    return [f"--only {', '.join(others)}: not a function of the {form} form, so not checked"] if others else []


CHECKS_VERSION = 3   # raised when the checks change, so a batch regrades what an older checker graded


def settings_record(options: Options) -> dict:
    """The settings a report depends on (a batch regrades a submission whose report had others)."""
    return asdict(options.settings) | {"timeout": options.budget.seconds, "call_timeout": options.budget.call_seconds,
                                       "memory_mb": options.limits.memory_mb, "form": options.form,
                                       "checks": CHECKS_VERSION}


def default_rubric(report: dict) -> Rubric:
    """The rubric of the report's form when none is given (see each form's default_rubric)."""
    return FORMS[report["form"]].default_rubric(report)


@dataclass
class TrainingRun:
    """The candidate's training (a child's records) and native's over the same steps, or why there is none."""

    records: dict = field(default_factory=dict)
    native: dict | None = None
    outcome: str = "finished"
    reason: str | None = None
    unavailable: str | None = None
    output: str = ""
    grading_error: str | None = None
    requested: int | None = None

    def analyse(self, estimates: dict, form: str, functions: dict | None = None) -> FunctionResult:
        if self.grading_error:
            return FunctionResult(TRAINING, GRADING_ERROR, diagnoses=[f"not graded: {self.grading_error}"],
                                  grading_error=self.grading_error)
        try:
            result = training.analyse_training(self.records, self.native, estimates, form, self.outcome, self.reason,
                                               self.unavailable, functions, self.requested)
        except Exception as error:  # noqa: BLE001 - a bug of the checker's: the training entry's grading error
            result = checker_failure(TRAINING, error)
        result.output = self.output
        return result


def no_mnist(options: Options) -> str | None:
    """Why task 3 cannot be graded here (no MNIST files where the checker looked), in one line, or None."""
    return material(options.settings).missing


def run_training(form: str, seen: Discovery, styles: dict, target: Target, options: Options,
                 progress=None) -> TrainingRun:
    """Task 3: the candidate's net in a child, within the budget, then native's here over the same steps."""
    missing = [name for name in training.needed(form).values()
               if name not in seen.found or not seen.found[name]["callable"]]
    if no_mnist(options):
        return TrainingRun(grading_error=f"task 3 cannot be run: {no_mnist(options)}")
    if seen.grading_error:
        return TrainingRun(grading_error=seen.grading_error)
    if seen.failure:
        return TrainingRun(unavailable=f"the module cannot be checked ({seen.failure[0]})")
    if missing:
        return TrainingRun(unavailable=f"needs {', '.join(missing)}, which the module does not define")
    budget = options.budget
    request = training.request(form, material(options.settings).state, options.settings, styles, budget.seconds)
    if progress is not None:
        progress.call(TRAINING, f"{options.settings.train_steps} SGD steps", 1, 1, time.monotonic(), budget.seconds)
    limits = replace(options.limits, timeout=budget.seconds + budget.call_seconds)
    run = sandbox.run_child("train", request, target, limits)
    if run.ready_seconds is None and not sandbox.STOPPING.is_set():
        return TrainingRun(grading_error=f"the checker's child process did not start: {run.reason}")
    done = run.records.get("train") or run.records.get("train-progress") or {}
    steps = len(done.get("losses", ())) or options.settings.train_steps
    native = training.native_run(request, stop=sandbox.STOPPING.is_set, steps=steps,
                                 test_samples=done.get("test_samples"))   # ends early if the checker is stopped
    return TrainingRun(run.records, native, run.outcome, run.reason, output=_output(run),
                       requested=options.settings.train_steps)

"""Which calls of a function run, and for how long each may: a time budget planned from measurement.

A form lists a function's calls in priority order (:data:`STAGES`): a cheap stage that establishes
correctness on small shapes, the graded shapes (the form's own: the homework's), more batch sizes,
gradients, timing. This module knows nothing of forms or ops: each call says its stage, its family
(calls of one family differ only in batch size), its batch size ``n``, its repeats, and its size in
multiply-adds (``work``) and output entries (``entries``); the schedule decides what runs within
the function's :class:`Budget` from the measured time of what ran before:

1. The first call (the cheapest) always runs, under the per-call ceiling (``call_seconds``). If
   it does not return within it, nothing else runs: the function is a timeout (a hang, or an
   implementation too slow to check at all).
2. The first call of the ``graded`` stage (the verdict call: the graded shapes, once) runs under
   the ceiling too, whatever its estimate and the budget say: an estimate from other shapes is a
   guess, and the graded shapes decide.
3. Every other call runs if its estimate fits what is left of the budget (``seconds``), in the
   order given; one that does not fit is skipped, and later, cheaper ones may still run. Each has a
   limit of SLACK times its estimate (at least MIN_LIMIT s, at most the ceiling): a call past its
   limit is stopped and not judged, and its family's estimate becomes at least what it took.

Estimates: a family measured at one batch size scales with it (an estimate that errs long); at two
or more, a fixed cost plus a cost per sample, fitted to the smallest and largest (so a call that
spends its time printing is not taken for one that computes); a gradient family not yet measured
is its forward family's times GRAD_FACTOR; any other from the nearest measured call, by the larger
of the work and entries ratios. Times are wall-clock seconds between call records, seen by the
checker, not what the child says (the first call of a child less the module's import time).

The plan is re-made after every call, so one child runs the calls as long as they fit: a fast
function runs its whole plan in one child. When a re-made plan drops the call the child is about
to run, or a call is stopped, the child is stopped and the calls that still fit run in another (at
most MAX_CHILDREN). What becomes of each call is its :class:`Fate`; only the returned ones are
judged (:mod:`.analysis`), the others are reported as not checked, saying why.

``execute(calls, pace)`` runs a list of calls and reports how it went (:class:`Ran`): in a child
(:func:`sandbox.run_child`, whose ``pace`` argument this module's :meth:`Schedule.pace` is), or in
this process (the tests).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

STAGES = ("small", "graded", "sizes", "gradients", "timing")
GRAD_FACTOR = 3.0     # a forward + backward call against a forward one, before one is measured
SLACK = 4.0           # a call's limit: this many times its estimate...
MIN_LIMIT = 10.0      # ... and at least this many seconds (both capped by the ceiling)
OVERHEAD = 0.005      # seconds of each call's own cost in the child (copies, records), not the candidate's
FINISH = 10.0         # seconds a child has, once its last call returned, to write its last record and exit
MAX_CHILDREN = 4      # children one function may use


@dataclass(frozen=True)
class Budget:
    """Time per function (its planned calls, ``--timeout``) and per call (the ceiling, ``--call-timeout``)."""

    seconds: float = 60.0
    call_seconds: float = 120.0

    def __post_init__(self) -> None:
        for name in ("seconds", "call_seconds"):
            if not 0 < getattr(self, name) < math.inf:
                raise ValueError(f"Budget: expected a finite {name} > 0, got {getattr(self, name)}")


@dataclass
class Fate:
    """What became of one call: returned, stopped (past its limit), skipped (not in the plan), crashed (the
    process died in it) or unreached (never started: the child died before it, or the module did not import)."""

    state: str
    reason: str | None = None
    seconds: float | None = None      # wall-clock seconds it took (returned) or ran (stopped)
    estimate: float | None = None     # what the plan expected it to take (skipped, stopped)

    @property
    def judged(self) -> bool:
        """Whether what it did counts: it returned, or it crashed the process."""
        return self.state in ("returned", "crashed")


@dataclass
class Ran:
    """What one ``execute`` reported: the records of the calls that returned (label -> record), how it ended
    ("finished", "halted" by the pace, "timeout", "crashed") and why, what the child printed."""

    records: dict
    outcome: str = "finished"
    reason: str | None = None
    output: str = ""
    seconds: float = 0.0
    import_error: dict | None = None
    ready_seconds: float | None = None   # None: the child never got ready (the environment's fault, not the code's)


@dataclass
class Result:
    """A function's calls once scheduled: the records of those that returned, and every call's fate."""

    records: dict = field(default_factory=dict)
    fates: dict = field(default_factory=dict)
    output: str = ""
    seconds: float = 0.0
    children: int = 0
    import_error: dict | None = None
    ended: str | None = None          # "timeout", "crashed", "import" or "environment": why it ended early
    reason: str | None = None


def bounded(text: str, keep: int = 4096) -> str:
    """The first and last ``keep`` characters of ``text`` (what several children printed, kept as one's is)."""
    if len(text) <= 2 * keep + 100:
        return text
    return f"{text[:keep]}\n[... {len(text) - 2 * keep} bytes left out ...]\n{text[-keep:]}"


def seconds_text(seconds: float) -> str:
    return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"


class Estimates:
    """Seconds per call, from the calls measured so far (see the module doc)."""

    def __init__(self) -> None:
        self.samples = {}      # family -> {batch size: the most seconds per repeat seen}
        self.measured = []     # (call, seconds) of every measured call

    def add(self, call, seconds: float) -> None:
        """A call took ``seconds`` (or at least that long, when it was stopped)."""
        seconds = max(seconds - OVERHEAD, 1e-4)
        self.measured.append((call, seconds))
        by_n = self.samples.setdefault(call.family, {})
        by_n[call.n] = max(by_n.get(call.n, 0.0), seconds / call.repeat)

    def _per_repeat(self, family: str | None, n: int, like: str | None = None) -> float | None:
        """Seconds per repeat at batch ``n`` from the family's measurements; measured at one batch size only, it
        scales as family ``like`` does where that one is measured at two (a gradient family as its forward one),
        else in proportion."""
        by_n = self.samples.get(family)
        if not by_n:
            return None
        low, high = min(by_n), max(by_n)
        if low == high:
            shape = self._per_repeat(like, n) if like and len(self.samples.get(like, ())) > 1 else None
            return by_n[low] * (shape / self._per_repeat(like, low) if shape else n / low)
        slope = max((by_n[high] - by_n[low]) / (high - low), 0.0)
        return max(by_n[low] - slope * low, 0.0) + slope * n

    def estimate(self, call) -> float | None:
        """Seconds ``call`` is expected to take, or None when nothing is measured yet."""
        own = self._per_repeat(call.family, call.n, call.forward_family)
        if own is None and call.forward_family:
            forward = self._per_repeat(call.forward_family, call.n)
            own = None if forward is None else forward * GRAD_FACTOR
        if own is not None:
            return OVERHEAD + own * call.repeat
        if not self.measured:
            return None
        base, seconds = min(self.measured, key=lambda m: abs(math.log(max(m[0].work, 1) / max(call.work, 1))))
        ratio = max(max(call.work, 1) / max(base.work, 1), max(call.entries, 1) / max(base.entries, 1))
        grad = GRAD_FACTOR if call.grad and not base.grad else 1.0
        return OVERHEAD + seconds * ratio * grad * call.repeat / base.repeat


class Schedule:
    """The plan of one function's calls, made again after every call (see the module doc)."""

    def __init__(self, calls: list, budget: Budget, import_seconds: float = 0.0, progress=None) -> None:
        self.calls, self.budget, self.import_seconds = calls, budget, import_seconds
        self.by_label = {call.label: call for call in calls}
        self.first = calls[0].label if calls else None
        self.verdict = next((c.label for c in calls if c.stage == "graded"), self.first)
        self.estimates = Estimates()
        self.result = Result()
        self.spent = 0.0
        self.limits = {}               # label -> the limit the call ran under
        self.progress = progress
        self.running = []              # the calls of the child running now
        self.last = None               # when the pace last saw a call return (None: its child is not ready yet)
        self.done = 0

    # ------------------------------------------------------------------------- the plan

    def pending(self) -> list:
        return [call for call in self.calls if call.label not in self.result.fates]

    def _left(self) -> float:
        return self.budget.seconds - self.spent

    def plan(self) -> list:
        """(call, limit) for the pending calls that run, in order."""
        kept, planned = [], 0.0
        ceiling = self.budget.call_seconds
        for call in self.pending():
            if call.label == self.first:
                kept.append((call, ceiling))
                continue
            if call.label == self.verdict:
                kept.append((call, ceiling))
                planned += min(self.estimates.estimate(call) or 0.0, ceiling)
                continue
            estimate = self.estimates.estimate(call)
            if estimate is None or planned + estimate <= self._left():
                kept.append((call, min(ceiling, max(MIN_LIMIT, SLACK * (estimate or 0.0)))))
                planned += estimate or 0.0
        return kept

    def why_not(self, call) -> str:
        """Why a call the plan leaves out did not run."""
        estimate = self.estimates.estimate(call)
        at = f"at N={call.n}" + (f" ({call.size_text})" if call.size_text else "")
        if estimate is None:
            return "not run: nothing before it returned"
        return (f"not checked: estimated {seconds_text(estimate)} {at} (budget {seconds_text(self.budget.seconds)}, "
                f"{seconds_text(max(self._left(), 0.0))} left)")

    # ------------------------------------------------------------------------- a child's pace

    def pace(self, done: int, now: float) -> float | None:
        """The deadline of the call the child runs now, after ``done`` of its calls returned; None: stop it (the
        call it is starting is no longer in the plan). See sandbox.run_child."""
        done = min(done, len(self.running))      # record files beyond the child's own calls are none of its records
        if self.last is None:        # the child is ready: a call it finished before this was seen is timed by its record
            self.last = now
        elif done > self.done:
            share = (now - self.last) / (done - self.done)
            for index in range(self.done, done):
                took = share - (self.import_seconds if index == 0 else 0.0)
                self._returned(self.running[index], max(took, 0.0))
            self.last = now
        self.done = done
        if done >= len(self.running):
            return now + FINISH
        call = self.running[done]
        limits = {kept.label: limit for kept, limit in self.plan()}
        if call.label not in limits:
            return None
        self.limits[call.label] = limits[call.label]
        if self.progress:
            self.progress(call, self)
        return now + limits[call.label] + (self.import_seconds if done == 0 else 0.0)

    def _returned(self, call, seconds: float) -> None:
        if call.label in self.result.fates:
            return
        self.result.fates[call.label] = Fate("returned", seconds=seconds)
        self.estimates.add(call, seconds)
        self.spent += seconds

    # ------------------------------------------------------------------------- running it

    def run(self, execute) -> Result:
        """Run the plan through ``execute(calls, pace) -> Ran`` (see the module doc) until nothing more fits."""
        while self.result.children < MAX_CHILDREN and not self.result.ended:
            kept = [call for call, _ in self.plan()]
            if not kept:
                break
            self.running, self.done, self.last = kept, 0, None
            self.result.children += 1
            start = time.monotonic()
            ran = execute(kept, self.pace)
            self.result.seconds += time.monotonic() - start
            self._absorb(ran)
        kept = {call.label for call, _ in self.plan()}
        for call in self.pending():
            why = self.why_not(call) if call.label not in kept else \
                f"not checked: the function used the {MAX_CHILDREN} child processes it may"
            self.result.fates[call.label] = Fate("skipped", why, estimate=self.estimates.estimate(call))
        return self.result

    def _absorb(self, ran: Ran) -> None:
        """The fates of one child's calls from what it reported."""
        result = self.result
        result.output = bounded(result.output + ran.output)
        result.records.update({label: record for label, record in ran.records.items() if label in self.by_label})
        at = next((call for call in self.running if call.label not in ran.records), None)
        for call in self.running:          # returned: its record is there (times the pace did not see: the child's)
            if call.label in ran.records and call.label not in result.fates:
                record = ran.records[call.label]
                self._returned(call, sum(record["seconds"]) + sum(record["native_seconds"]))
            elif call.label not in ran.records and result.fates.get(call.label, Fate("")).state == "returned":
                del result.fates[call.label]   # the pace saw a file, but it is no record of this child's
        if at is None:
            return
        if ran.ready_seconds is None and ran.outcome != "finished":
            result.ended, result.reason = "environment", ran.reason
            self._unreached(f"not run: the child process did not start ({ran.reason})")
        elif ran.import_error is not None:
            result.import_error, result.ended = ran.import_error, "import"
            self._unreached(f"not run: importing the module raised {ran.import_error['type']}")
        elif ran.outcome == "timeout":
            limit = self.limits.get(at.label, self.budget.call_seconds)
            estimate = self.estimates.estimate(at)
            guess = f" (estimated {seconds_text(estimate)})" if estimate is not None and at.label != self.first else ""
            result.fates[at.label] = Fate("stopped", f"not checked: did not return within {seconds_text(limit)}"
                                                     f"{guess}: stopped", seconds=limit, estimate=estimate)
            self.estimates.add(at, limit)
            self.spent += limit
            if at.label == self.first:
                result.ended, result.reason = "timeout", (
                    f"the first call ({at.label}) did not return within {seconds_text(limit)} (--call-timeout): "
                    f"a hang, or too slow to check at all")
                self._unreached("not run: the first call did not return")
        elif ran.outcome == "crashed":
            result.fates[at.label] = Fate("crashed", f"crashed: {ran.reason}")
            result.ended, result.reason = "crashed", ran.reason
            self._unreached(f"not run: the process crashed at {at.label}")
        elif ran.outcome == "finished":     # it exited without this call's record: a child that lies
            result.ended, result.reason = "crashed", "the child ended without recording every call"
            result.fates[at.label] = Fate("crashed", f"crashed: {result.reason}")
            self._unreached(f"not run: the process ended at {at.label}")

    def _unreached(self, why: str) -> None:
        for call in self.pending():
            self.result.fates[call.label] = Fate("unreached", why)


def in_process(run_call):
    """An ``execute`` that runs the calls here, one by one (``run_call(call) -> record``), asking the pace after
    each as a child's watcher would; it cannot stop a call, only not start the next. For the tests."""
    def execute(calls: list, pace) -> Ran:
        records = {}
        if pace(0, time.monotonic()) is None:
            return Ran(records, "halted", ready_seconds=0.0)
        for done, call in enumerate(calls, 1):
            records[call.label] = run_call(call)
            if pace(done, time.monotonic()) is None:
                return Ran(records, "halted", ready_seconds=0.0)
        return Ran(records, ready_seconds=0.0)
    return execute

"""Rubrics: which checks earn which points, read from a JSON file an instructor can copy and edit.

A rubric file (``rubrics/homework.json`` is the built-in ``--rubric homework``)::

    {"name": ..., "title": ..., "max_score": 100,
     "items": [{"name": "Task 2a: conv2d_vector", "points": 60, "credit": "partial",
                "functions": ["conv2d_vector"], "checks": ["values", "shape", ...],
                "gates": {"from-scratch": 0, "im2col": 0.5}}, ...]}

An item's points are shared equally by its functions. ``checks`` names the kinds of check that
count (the first word of a check's name: the kinds of :mod:`.analysis`, and ``train``/``timing``
of the ``training`` entry): a list counts every such check the same; an object {kind: weight}
gives each kind a weight, shared by its checks. With credit ``"partial"`` a function earns its
share times the (weighted) fraction of those checks that pass; with ``"all"`` the whole share
only if every one of them passes. ``gates`` (optional) {kind: factor in [0, 1]} scales what a
function earns when a check of that kind fails, whatever else passes: the homework's items have
{"from-scratch": 0} (a function that calls the native op it is meant to compute earns nothing)
and task 2a also {"im2col": 0.5} (columns built by PyTorch's F.unfold: half). A gate only takes
away, so a function that does nothing gains nothing from passing one. A function that is missing,
or has none of the counted checks, earns nothing. Only checks count: a call that did not run (for
lack of time, see schedule) is no check, so a slow function earns what a fast one does. The total
is capped at ``max_score`` (so items may add up to more: bonus points); the report keeps the sum
before the cap beside it. ``visibility`` (optional) is when students see the item's result on a
platform that can hide it (Gradescope's test visibility: one of VISIBILITIES); the checker's own
outputs show every item.

An item of ``"kind": "speed"`` gives points for speed instead, by thresholds the instructor sets::

    {"name": "Speed of conv2d_vector", "kind": "speed", "points": 5, "functions": ["conv2d_vector"],
     "thresholds": [[2, 1.0], [10, 0.5]]}

a function earns the fraction of the first threshold [at most this many times native's time,
fraction] its slowest timed call meets (forward + backward against native in the same child;
where the timed call did not run, its largest call that did, against native timed here), and
nothing when it meets none or was never timed. The homework's rubric has none: the handout asks
for the time per epoch to be reported, not for speed.

An item is not graded (``"graded": false``, ``"score": null``, ``"not_graded"``: why) when one of
its functions could not be judged through no fault of the submission's (a grading error: missing
MNIST data, a checker error, a broken environment) or was left out with ``--only``; the score adds
the graded items only.

Without --rubric, the handout form is graded with ``homework`` and the functional form with
``functions``: a point for each function defined (every check but speed; the from-scratch gate)
and one for training (when it ran).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

RUBRICS = Path(__file__).with_name("rubrics")
CREDITS = ("partial", "all")
ITEM_KINDS = ("checks", "speed")
ALL_KINDS = ["type", "shape", "dtype", "device", "values", "arguments", "repeatable", "graph", "gradient"]
GATES = {"from-scratch": 0.0}   # the functional form's gate (see the module doc; im2col by hand is the homework's)
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")   # Gradescope's, for an item's "visibility"


class RubricError(ValueError):
    """A rubric file that cannot be used, with what is wrong in it."""


@dataclass(frozen=True)
class Item:
    name: str
    points: float
    functions: tuple
    checks: dict              # kind -> weight (None: every check of every kind alike)
    credit: str = "partial"
    gates: dict = field(default_factory=dict)   # kind -> the factor of what a function earns if one fails
    visibility: str | None = None               # one of VISIBILITIES, or None: the platform's default
    kind: str = "checks"      # or "speed": points by thresholds on the time against native's
    thresholds: tuple = ()    # speed: ((at most this many times native's, fraction earned), ...)


@dataclass(frozen=True)
class Rubric:
    name: str
    title: str
    max_score: float
    items: tuple

    @property
    def total_points(self) -> float:
        return sum(item.points for item in self.items)


def _require(condition: bool, where: str, message: str) -> None:
    if not condition:
        raise RubricError(f"rubric {where}: {message}")


def parse(document: dict, where: str) -> Rubric:
    _require(isinstance(document, dict), where, "expected a JSON object")
    items = document.get("items")
    _require(isinstance(items, list) and items, where, "expected a non-empty list 'items'")
    parsed = []
    for number, item in enumerate(items, 1):
        at = f"{where}, item {number}"
        _require(isinstance(item, dict), at, "expected an object")
        _require(isinstance(item.get("name"), str), at, "expected a string 'name'")
        points = item.get("points")
        _require(isinstance(points, (int, float)) and not isinstance(points, bool) and points >= 0, at,
                 f"expected 'points' >= 0, got {points!r}")
        functions, checks = item.get("functions"), item.get("checks")
        _require(isinstance(functions, list) and functions and all(isinstance(v, str) for v in functions), at,
                 f"expected 'functions' to be a non-empty list of names, got {functions!r}")
        kind = item.get("kind", "checks")
        _require(kind in ITEM_KINDS, at, f"expected 'kind' to be one of {ITEM_KINDS}, got {kind!r}")
        visibility = item.get("visibility")
        _require(visibility is None or visibility in VISIBILITIES, at,
                 f"expected 'visibility' to be one of {VISIBILITIES}, got {visibility!r}")
        if kind == "speed":
            parsed.append(_speed_item(item, float(points), tuple(functions), at, visibility))
            continue
        weighted = isinstance(checks, dict) and all(isinstance(w, (int, float)) and w > 0 for w in checks.values())
        _require(checks and (weighted or isinstance(checks, list) and all(isinstance(v, str) for v in checks)), at,
                 f"expected 'checks' to be a list of kinds or an object of kind: weight > 0, got {checks!r}")
        credit = item.get("credit", "partial")
        _require(credit in CREDITS, at, f"expected 'credit' to be one of {CREDITS}, got {credit!r}")
        gates = item.get("gates", {})
        _require(isinstance(gates, dict) and all(isinstance(f, (int, float)) and not isinstance(f, bool)
                                                 and 0 <= f <= 1 for f in gates.values()), at,
                 f"expected 'gates' to be an object of kind: factor in [0, 1], got {gates!r}")
        kinds = dict(checks) if weighted else dict.fromkeys(checks)
        parsed.append(Item(item["name"], float(points), tuple(functions), kinds, credit, dict(gates), visibility))
    max_score = document.get("max_score", sum(item.points for item in parsed))
    _require(isinstance(max_score, (int, float)) and max_score > 0, where, f"expected 'max_score' > 0, got {max_score!r}")
    return Rubric(document.get("name", where), document.get("title", ""), float(max_score), tuple(parsed))


def _speed_item(item: dict, points: float, functions: tuple, at: str, visibility: str | None) -> Item:
    thresholds = item.get("thresholds")
    _require(isinstance(thresholds, list) and thresholds and all(
        isinstance(t, list) and len(t) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in t)
        and t[0] > 0 and 0 <= t[1] <= 1 for t in thresholds), at,
        f"expected 'thresholds' to be a non-empty list of [times native > 0, fraction in [0, 1]], got {thresholds!r}")
    ordered = tuple(sorted((float(ratio), float(fraction)) for ratio, fraction in thresholds))
    return Item(item["name"], points, functions, {}, visibility=visibility, kind="speed", thresholds=ordered)


def find(name_or_path: str) -> Path:
    """The file of a built-in rubric by name (``homework``), or the rubric file given."""
    path = RUBRICS / f"{name_or_path}.json" if (RUBRICS / f"{name_or_path}.json").is_file() else Path(name_or_path)
    if not path.is_file():
        built_in = ", ".join(sorted(p.stem for p in RUBRICS.glob("*.json")))
        raise RubricError(f"rubric {name_or_path!r}: neither a built-in one ({built_in}) nor a file")
    return path


def load(name_or_path: str) -> Rubric:
    """A built-in rubric by name (``homework``) or a rubric file."""
    path = find(name_or_path)
    try:
        document = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RubricError(f"rubric {path}: cannot be read as JSON ({error})") from None
    return parse(document, str(path))


def functions_rubric(names, training: bool = True) -> Rubric:
    """The default for the functional form: one point for each function, and one for training (if it ran)."""
    items = [Item(name, 1.0, (name,), dict.fromkeys(ALL_KINDS), gates=GATES) for name in names]
    if training:
        items.append(Item("training", 1.0, ("training",), dict.fromkeys(("train", "timing"))))
    return Rubric("functions", "one point for each function and for training", float(len(items)), tuple(items))


def _gated(fraction: float, why: str, function: dict, gates: dict) -> tuple[float, str]:
    """The fraction scaled by the gate of every kind with a failing check, and why."""
    for kind, factor in gates.items():
        failing = next((c["name"] for c in function["checks"] if c["name"].split(" ")[0] == kind and not c["passed"]),
                       None)
        if failing:
            fraction *= factor
            why += f"; {failing} fails: " + ("nothing earned" if factor == 0 else f"times {factor:g}")
    return fraction, why


def _fraction(function: dict | None, kinds: dict, credit: str, gates: dict) -> tuple[float, str]:
    """(the share of one function earned, why), from its report entry (status, checks)."""
    if function is None:
        return 0.0, "not checked"
    if function["status"] == "missing":
        return 0.0, "missing"
    chosen = {kind: [c["passed"] for c in function["checks"] if c["name"].split(" ")[0] == kind] for kind in kinds}
    chosen = {kind: results for kind, results in chosen.items() if results}
    if not chosen:
        return 0.0, f"{function['status']}: none of its checks count here"
    passed, count = sum(sum(r) for r in chosen.values()), sum(len(r) for r in chosen.values())
    if credit == "all":
        fraction = float(passed == count)
    elif None in kinds.values():
        fraction = passed / count
    else:
        fraction = sum(kinds[k] * sum(r) / len(r) for k, r in chosen.items()) / sum(kinds[k] for k in chosen)
    why = f"{passed}/{count} of the checks this item counts pass ({function['status']})"
    if passed == count and function["status"] not in ("pass", "missing"):
        others = [c["name"] for c in function["checks"] if not c["passed"]]
        why = (f"{passed}/{count} of the checks this item counts pass; it is '{function['status']}' for "
               + (f"checks the item does not count: {', '.join(others[:3])}{' ...' if len(others) > 3 else ''}"
                  if others else "its run, not a check: see its diagnoses"))
    return _gated(fraction, why, function, gates)


def slowest(function: dict) -> tuple[float, str] | None:
    """(its largest time against native's, on which call) from a report entry's timing, or None if never timed."""
    ratios = [(t["seconds"] / t["native"], label + (" (estimated from a call that ran)" if t.get("estimated") else ""))
              for label, t in (function.get("timing") or {}).items() if t.get("native")]
    return max(ratios) if ratios else None


def _speed(function: dict | None, thresholds: tuple) -> tuple[float, str]:
    """(the share of one function earned by its speed, why)."""
    if function is None or function["status"] == "missing":
        return 0.0, "missing" if function else "not checked"
    found = slowest(function)
    if found is None:
        return 0.0, "never timed (it failed, or no timed call ran within its budget)"
    ratio, label = found
    fraction = next((f for at_most, f in thresholds if ratio <= at_most), 0.0)
    met = next((f"at most {at_most:g}x native" for at_most, _ in thresholds if ratio <= at_most),
               f"over {thresholds[-1][0]:g}x native")
    return fraction, f"{ratio:.3g}x native at {label}: {met} earns {fraction:g}"


def _not_graded(item: Item, functions: dict, only) -> str | None:
    """Why an item cannot be graded (a grading error of one of its functions, or --only left it out), or None."""
    for name in item.functions:
        entry = functions.get(name)
        if entry is not None and entry.get("grading_error"):
            return f"{name}: {entry['grading_error']}"
        if entry is None and only is not None and name not in only:
            return f"{name} not checked (--only)"
    return None


def score(rubric: Rubric, functions: dict, only=None, whole: str | None = None) -> dict:
    """{"items": [{"name", "points", "score", "detail", "functions", "graded", "not_graded"?}], "score", "max_score",
    "total_points", "sum", "graded"} from the report's functions (name -> {"status", "checks": [{"name", "passed",
    ...}], "grading_error"?}); ``only``: the names --only checked, if given; ``whole``: why none of it can be
    graded (the checker failed on the submission). ``score`` is the sum of the graded items, capped at max_score;
    ``sum`` before the cap."""
    items = []
    for item in rubric.items:
        entry = {"name": item.name, "points": item.points, "functions": list(item.functions)} | \
            ({"visibility": item.visibility} if item.visibility else {})
        why_not = whole or _not_graded(item, functions, only)
        if why_not:
            items.append(dict(entry, score=None, graded=False, not_graded=why_not, detail=f"not graded: {why_not}"))
            continue
        shares = [(name, *(_speed(functions.get(name), item.thresholds) if item.kind == "speed" else
                           _fraction(functions.get(name), item.checks, item.credit, item.gates)))
                  for name in item.functions]
        earned = item.points * sum(fraction for _, fraction, _ in shares) / len(shares)
        items.append(dict(entry, score=round(earned, 2), graded=True,
                          detail="; ".join(f"{name}: {why}" for name, _, why in shares)))
    total = sum(item["score"] for item in items if item["graded"])
    return {"rubric": rubric.name, "items": items, "score": round(min(total, rubric.max_score), 2),
            "max_score": rubric.max_score, "total_points": rubric.total_points, "sum": round(total, 2),
            "graded": all(item["graded"] for item in items)}

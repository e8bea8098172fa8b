"""Grade a folder of submissions: a report, a feedback file and a Gradescope file each, and a gradebook.

    python -m simple_conv_net.check --batch DIR [--out OUT] [--force] [--rubric homework|FILE]

Every subfolder of DIR and every .py file in it is a submission, named by its folder or its file's
stem. Two that would get one name (alice/ and alice.py, or Alice.py and alice/ on a file system
that ignores case) would share one folder of reports and one row: the batch is refused before
anything is graded, with the clashes listed, for the instructor to rename one of each pair. Each
is checked in turn (its functions ``--jobs`` at a time) and gets ``OUT/NAME/report.json``,
``feedback.md`` and ``results.json`` (Gradescope's name); ``OUT/gradebook.csv`` has a row per
submission and a column per rubric item, and is written again after every submission, so an
interrupted batch loses nothing it graded. A submission the checker cannot grade is a row of its
own, never the end of the batch: "unusable" (no Python file, or none of the names) or "checker
error" (an exception in the checker, its traceback's last lines in the feedback). A grading error
(missing MNIST files, a checker error, a child that could not start: nothing the student did)
records no score for the items it touches: their cells say "not graded: ...", and the next run
grades that submission again. A second run skips each submission whose report is there, graded
in full, for the same files (their SHA-256) and the same settings, unless ``--force``; it scores
the stored checks with the rubric of this run, so changing the rubric needs no rerun. Every file
is written to a temporary name and renamed. The gradebook's cells that come from names or
messages are kept from being read as spreadsheet formulas (a leading =, +, - or @ gets a quote).
On a terminal a progress line follows the submission being checked; off one, a line per
submission graded. The exit status is report.exit_status's over every submission: 2 if one has a
grading error.
"""

from __future__ import annotations

import csv
import io
import json
import time
import traceback
from pathlib import Path

from ..io import atomic_write_text
from . import report as outputs
from .grade import Options, check, default_rubric, settings_record
from .progress import Progress
from .rubric import Rubric
from .targets import TargetError, resolve

REPORT, FEEDBACK, GRADESCOPE, GRADEBOOK = "report.json", "feedback.md", "results.json", "gradebook.csv"


def submissions(folder: Path, out: Path) -> list[tuple[str, Path]]:
    """(name, path) of every subfolder and .py file of ``folder``, hidden ones and ``out`` left out; TargetError
    when two would have one name."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "__")) or path.resolve() == out.resolve():
            continue
        if path.is_dir() or path.suffix == ".py":
            found.append((path.stem if path.is_file() else path.name, path))
    by_name = {}
    for name, path in found:
        by_name.setdefault(name.casefold(), []).append(path.name + "/" * path.is_dir())
    clashes = [" and ".join(paths) for paths in by_name.values() if len(paths) > 1]
    if clashes:
        raise TargetError(f"--batch {folder}: {'; '.join(clashes)} would be graded under one name (their reports "
                          f"would share a folder and a gradebook row): rename one of each")
    return found


def _stored(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _ungraded(name: str, note: str, settings: dict, fingerprint: str | None, traceback_text: str = "",
              grading_error: bool = False) -> dict:
    """The report of a submission the checker could not grade (no functions: the note says why; with
    ``grading_error`` it is the checker's fault, and none of its items is graded), in the batch's --form if any."""
    return {"target": name, "form": settings.get("form") or "handout", "functions": {}, "epoch": {}, "notes": [note],
            "seconds": 0.0, "settings": settings, "fingerprint": fingerprint, "traceback": traceback_text,
            "ungraded": [note] if grading_error else []}


def _checker_error(name: str, error: Exception, settings: dict) -> dict:
    """A bug of the checker's met grading one submission: its row says so (no fingerprint: regraded next time)."""
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    return _ungraded(name, f"checker error: {type(error).__name__}: {error}", settings, None, "".join(lines[-4:]),
                     grading_error=True)


def _cell_score(item: dict):
    return f"not graded: {item['not_graded']}" if item["score"] is None else item["score"]


def _cell(text: str) -> str:
    """Text a spreadsheet shows as text: a leading =, +, - or @ (a formula) gets a quote."""
    return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text


def gradebook(reports: dict) -> str:
    """CSV: submission, score, max_score, one column per rubric item (in first-seen order), problems."""
    items = list(dict.fromkeys(item["name"] for r in reports.values() for item in r["rubric"]["items"]))
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["submission", "score", "max_score", *map(_cell, items), "not passing"])
    for name, r in reports.items():
        scores = {item["name"]: _cell_score(item) for item in r["rubric"]["items"]}
        problems = [f"{function}: {entry['status']}" for function, entry in r["functions"].items()
                    if entry["status"] != "pass"] + r.get("notes", [])[:1] * (not r["functions"])
        writer.writerow([_cell(name), r["score"], r["max_score"],
                         *(_cell(str(scores.get(item, ""))) for item in items), _cell("; ".join(problems))])
    return table.getvalue()


def _grade(name: str, path: Path, stored: dict | None, options: Options, rubric: Rubric | None, force: bool,
           settings: dict, progress: Progress | None = None) -> tuple[dict, bool]:
    """(the report of one submission, whether it was stored already): never an exception but an interruption."""
    try:
        target = resolve(str(path))
    except TargetError as error:
        return _ungraded(name, f"unusable: {error}", settings, None), False
    fingerprint = target.fingerprint()
    if stored and stored.get("fingerprint") == fingerprint and stored.get("settings") == settings and not force \
            and not stored.get("grading_errors"):
        return stored, True
    try:
        return check(target, options, rubric, progress), False
    except TargetError as error:    # it defines none of the names: the same files give the same answer
        return _ungraded(name, f"unusable: {error}", settings, fingerprint), False
    except Exception as error:  # noqa: BLE001 - a bug of the checker's: this submission's row, not the batch's end
        return _checker_error(name, error, settings), False


def grade_batch(folder, out, options: Options, rubric: Rubric | None, force: bool) -> int:
    folder = Path(folder)
    if not folder.is_dir():
        raise TargetError(f"--batch {folder}: not a folder")
    out = Path(out) if out else folder.resolve().with_name(folder.resolve().name + "-results")
    found = submissions(folder, out)
    if not found:
        raise TargetError(f"--batch {folder}: no subfolders or .py files to grade")
    settings = json.loads(json.dumps(settings_record(options)))
    reports, skipped, start = {}, 0, time.monotonic()
    progress = Progress(per_function=False)
    try:
        for number, (name, path) in enumerate(found, 1):
            begun = time.monotonic()
            result, was_stored = _grade(name, path, _stored(out / name / REPORT), options, rubric, force, settings,
                                        progress)
            skipped += was_stored
            result = outputs.rescore(result, rubric or default_rubric(result))
            outputs.write_outputs(result, out / name / REPORT, out / name / GRADESCOPE, out / name / FEEDBACK)
            reports[name] = result
            atomic_write_text(out / GRADEBOOK, gradebook(reports))
            how = "already graded" if was_stored else f"{time.monotonic() - begun:.0f} s"
            ungraded = f", not graded: {'; '.join(result['grading_errors'])}" if result.get("grading_errors") else ""
            progress.say(f"[{number}/{len(found)}] {name}: {result['score']:g} / {result['max_score']:g} ({how})"
                         f"{ungraded}")
    finally:
        progress.close()
    print(f"graded {len(found) - skipped} submission(s), skipped {skipped} already graded, in "
          f"{time.monotonic() - start:.0f} s: {out / GRADEBOOK}")
    print(gradebook(reports), end="")
    return outputs.exit_status(list(reports.values()))

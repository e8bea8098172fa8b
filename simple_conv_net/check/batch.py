"""Grade a folder of submissions: a report, a feedback file and a Gradescope file each, and a gradebook.

    python -m simple_conv_net.check --batch DIR [--out OUT] [--force] [--rubric homework|FILE]

Every subfolder of DIR and every .py file in it is a submission. Each is checked in turn (its
functions ``--jobs`` at a time) and gets ``OUT/NAME/report.json``, ``feedback.md`` and
``results.json`` (Gradescope's name); ``OUT/gradebook.csv`` has a row per submission and a column
per rubric item, and is written again after every submission, so an interrupted batch loses
nothing it graded. A second run skips each submission whose report is there, for the same files
(their SHA-256) and the same settings, unless ``--force``; it scores the stored checks with the
rubric of this run, so changing the rubric needs no rerun. Every file is written to a temporary
name and renamed.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from ..io import atomic_write_text
from . import report as outputs
from .grade import Options, check, default_rubric, settings_record
from .rubric import Rubric
from .targets import TargetError, resolve

REPORT, FEEDBACK, GRADESCOPE, GRADEBOOK = "report.json", "feedback.md", "results.json", "gradebook.csv"


def submissions(folder: Path, out: Path) -> list[tuple[str, Path]]:
    """(name, path) of every subfolder and .py file of ``folder``, hidden ones and ``out`` left out."""
    found = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "__")) or path.resolve() == out.resolve():
            continue
        if path.is_dir() or path.suffix == ".py":
            found.append((path.stem if path.is_file() else path.name, path))
    return found


def _stored(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _unusable(name: str, error: Exception, settings: dict) -> dict:
    """The report of a submission the checker cannot even start on (no Python file, say)."""
    return {"target": name, "form": "handout", "functions": {}, "epoch": {}, "notes": [str(error)],
            "seconds": 0.0, "settings": settings, "fingerprint": None}


def gradebook(reports: dict) -> str:
    """CSV: submission, score, max_score, one column per rubric item (in first-seen order), problems."""
    items = list(dict.fromkeys(item["name"] for r in reports.values() for item in r["rubric"]["items"]))
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["submission", "score", "max_score", *items, "not passing"])
    for name, r in reports.items():
        scores = {item["name"]: item["score"] for item in r["rubric"]["items"]}
        problems = [f"{function}: {entry['status']}" for function, entry in r["functions"].items()
                    if entry["status"] != "pass"] + r.get("notes", [])[:1] * (not r["functions"])
        writer.writerow([name, r["score"], r["max_score"], *(scores.get(item, "") for item in items),
                         "; ".join(problems)])
    return table.getvalue()


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
    with tqdm(found, desc="grading", unit="submission", file=sys.stderr, disable=None) as bar:
        for name, path in bar:
            bar.set_postfix_str(name)
            stored = _stored(out / name / REPORT)
            try:
                target = resolve(str(path))
            except TargetError as error:
                result = _unusable(name, error, settings)
            else:
                fresh = stored and stored.get("fingerprint") == target.fingerprint() and \
                    stored.get("settings") == settings
                if fresh and not force:
                    result, skipped = stored, skipped + 1
                else:
                    result = check(target, options, rubric)
            result = outputs.rescore(result, rubric or default_rubric(result))
            atomic_write_text(out / name / REPORT, outputs.dumps(result))
            atomic_write_text(out / name / FEEDBACK, outputs.feedback(result))
            atomic_write_text(out / name / GRADESCOPE, outputs.dumps(outputs.gradescope(result)))
            reports[name] = result
            atomic_write_text(out / GRADEBOOK, gradebook(reports))
    print(f"graded {len(found) - skipped} submission(s), skipped {skipped} already graded, in "
          f"{time.monotonic() - start:.0f} s: {out / GRADEBOOK}")
    print(gradebook(reports), end="")
    return 0 if all(outputs.passed(r) and r["functions"] for r in reports.values()) else 1

"""Find the homework's file in what a student uploaded, however it was uploaded.

A platform puts an upload in a folder (Gradescope's /autograder/submission, PrairieLearn's /grade/student):
the file alone, the files of a folder, a zip of either (unpacked by the platform or not), or the file
under another name. :func:`locate` copies the upload into a private folder, unpacks every .zip in it
(safely: no path outside the folder, no links, at most UNPACK_LIMIT_MB and MEMBERS_LIMIT entries), leaves
out what is not code (``__MACOSX``, hidden files, ``__pycache__``), then picks the file to grade:

1. the one named simple_conv_net_func.py (the shallowest, when copies lie deeper);
2. else the one .py file that defines any of the checker's names (read, not run), or the only .py file;
3. else none: :class:`SubmissionProblem` tells the student what was found and exactly what to upload
   or rename.

The file is graded in its folder (its sibling modules importable; alone if the folder holds more than the
checker copies for each function), under the handout's name when it had another; the note says so, for the
student.
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .forms import ALL_NAMES, names_in_source
from .targets import COPY_LIMIT_MB, HANDOUT_FILE, IGNORED_FOLDERS

UNPACK_LIMIT_MB = COPY_LIMIT_MB
MEMBERS_LIMIT = 2000
NOT_CODE = ("__MACOSX", ".*", *IGNORED_FOLDERS, "*.pyc")
SHOWN = 8           # names listed in a message


class SubmissionProblem(ValueError):
    """The upload holds no file to grade: the message is for the student."""


@dataclass(frozen=True)
class Located:
    folder: Path        # the private copy to check: a folder holding HANDOUT_FILE
    shown: str          # the file as the student uploaded it ("hw2.zip: hw2/my_functions.py")
    note: str | None    # what the student should know about how it was found


def _listing(paths, root: Path) -> str:
    names = sorted(str(path.relative_to(root)) for path in paths)
    return ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _member_parts(info: zipfile.ZipInfo) -> tuple | None:
    """The relative path of a regular file in a zip, or None for a folder, a link or a path leading outside."""
    name = info.filename.replace("\\", "/")
    parts = PurePosixPath(name).parts
    link = (info.external_attr >> 16) & 0o170000 == 0o120000
    if info.is_dir() or link or name.startswith("/") or ".." in parts or not parts or ":" in parts[0]:
        return None
    return parts


def _unpack(archive: Path, into: Path) -> None:
    """The files of ``archive`` in ``into``; SubmissionProblem for a zip that cannot be read or is too large."""
    limit = UNPACK_LIMIT_MB << 20
    try:
        with zipfile.ZipFile(archive) as opened:
            members = opened.infolist()
            if len(members) > MEMBERS_LIMIT:
                raise SubmissionProblem(f"{archive.name} holds {len(members)} files, more than the {MEMBERS_LIMIT} "
                                        f"unpacked: upload {HANDOUT_FILE} alone")
            written = 0
            for info in members:
                parts = _member_parts(info)
                if parts is None:
                    continue
                target = into.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with opened.open(info) as source, open(target, "wb") as sink:
                    while chunk := source.read(1 << 20):
                        written += len(chunk)
                        if written > limit:
                            raise SubmissionProblem(f"{archive.name} unpacks to more than {UNPACK_LIMIT_MB} MB: "
                                                    f"upload {HANDOUT_FILE} alone")
                        sink.write(chunk)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError) as error:
        raise SubmissionProblem(f"{archive.name} cannot be unpacked ({error}): upload {HANDOUT_FILE} itself, or a "
                                f"plain .zip of it") from None


def _copy(upload: Path, work: Path) -> tuple[Path, dict]:
    """A private copy of the upload with every .zip unpacked in place of it: (its folder, unpacked folder -> the
    zip's name)."""
    copy = work / "upload"
    try:
        shutil.copytree(upload, copy, symlinks=True, ignore=shutil.ignore_patterns(*NOT_CODE))
    except (OSError, shutil.Error) as error:
        raise SubmissionProblem(f"the submission could not be copied ({error})") from None
    unpacked = {}
    for archive in sorted(copy.rglob("*.zip")):
        if archive.is_symlink() or not archive.is_file():
            continue
        into = archive.with_suffix("")
        into = into if not into.exists() else into.with_name(into.name + "-unzipped")
        _unpack(archive, into)
        archive.unlink()
        unpacked[into] = archive.relative_to(copy)
    for path in sorted(copy.rglob("*"), reverse=True):      # what the zips held that is not code
        if not path.exists() or path.is_symlink() or not any(path.match(pattern) for pattern in NOT_CODE):
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
    return copy, unpacked


def _shown(path: Path, copy: Path, unpacked: dict) -> str:
    for folder, archive in unpacked.items():
        if folder in path.parents:
            return f"{archive}: {path.relative_to(folder)}"
    return str(path.relative_to(copy))


def _pick(copy: Path) -> Path:
    """The file to grade (see the module's doc), or SubmissionProblem."""
    files = [path for path in copy.rglob("*") if path.is_file() and not path.is_symlink()]
    python = [path for path in files if path.suffix == ".py"]
    named = [path for path in python if path.name == HANDOUT_FILE]
    if named:
        shallowest = min(len(path.parts) for path in named)
        top = [path for path in named if len(path.parts) == shallowest]
        if len(top) == 1:
            return top[0]
        raise SubmissionProblem(f"Your submission holds {len(top)} files named {HANDOUT_FILE} ({_listing(top, copy)}): "
                                f"upload just the one to grade.")
    defining = [path for path in python if set(ALL_NAMES) & (names_in_source(path) or set())]
    if len(defining) == 1 or len(python) == 1:
        return (defining or python)[0]
    if defining:
        raise SubmissionProblem(f"No file of your submission is named {HANDOUT_FILE}, and {len(defining)} define the "
                                f"homework's functions ({_listing(defining, copy)}): rename the one to grade "
                                f"{HANDOUT_FILE}, and upload it alone or with the modules it imports.")
    raise SubmissionProblem(_nothing_to_grade(files, python, copy))


def _nothing_to_grade(files: list, python: list, copy: Path) -> str:
    """What to tell a student whose upload holds no file to grade."""
    stem = HANDOUT_FILE.removesuffix(".py")
    if python:
        return (f"No file of your submission is named {HANDOUT_FILE}, and none of its .py files "
                f"({_listing(python, copy)}) defines the homework's functions ({', '.join(ALL_NAMES[:4])}, ...): "
                f"upload your {HANDOUT_FILE}.")
    notebooks = [path for path in files if path.suffix == ".ipynb"]
    if notebooks:
        return (f"Your submission holds a notebook ({_listing(notebooks, copy)}), not a Python file: export it as a .py "
                f"file (Jupyter's File menu, Download as, Python), name it {HANDOUT_FILE} and upload that.")
    near = [path for path in files if path.name.lower().startswith(stem)]
    if near:
        return f"Rename {_listing(near, copy)} to {HANDOUT_FILE} (a .py file) and upload it again."
    found = f"it holds {_listing(files, copy)}" if files else "it is empty"
    return f"Your submission has no Python file ({found}): upload {HANDOUT_FILE}."


def locate(upload: Path, work: Path) -> Located:
    """The file of ``upload`` (a folder) to grade, copied under ``work`` (an empty folder of the caller's)."""
    upload = Path(upload)
    if not upload.is_dir():
        raise SubmissionProblem(f"Nothing was submitted (no folder {upload}): upload {HANDOUT_FILE}.")
    copy, unpacked = _copy(upload, Path(work))
    chosen = _pick(copy)
    shown = _shown(chosen, copy, unpacked)
    notes = [] if chosen.name == HANDOUT_FILE else [f"as {HANDOUT_FILE}, the name the assignment asks for: name it "
                                                     f"so next time"]
    folder = chosen.parent
    size = sum(path.stat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())
    if size > COPY_LIMIT_MB << 20:      # more than the checker copies for each function: the file alone
        folder = Path(work) / "alone"
        folder.mkdir()
        notes.append(f"alone: its folder holds {size >> 20} MB, more than the {COPY_LIMIT_MB} MB a submission may")
    if folder / HANDOUT_FILE != chosen:
        shutil.copy2(chosen, folder / HANDOUT_FILE)
    note = f"Graded {shown} {', '.join(notes)}." if notes else (f"Graded {shown}." if shown != HANDOUT_FILE else None)
    return Located(folder, shown, note)

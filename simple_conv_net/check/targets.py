"""What the user asked to check: a .py file, a folder holding one, a package, or a module name.

A file or folder is never imported in place: each child process gets its own copy of it, in
its own temporary working directory (:meth:`Target.copy_into`). A folder is copied whole, so a
student's sibling modules import as they do on the student's machine; a file alone is copied
alone (in a folder of many submissions, one must not import another's); a package folder (one
with ``__init__.py``) is copied as a package and imported by its name. A module name that is no
path is imported where it is installed (your own code: nothing is copied).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

HANDOUT_FILE = "simple_conv_net_func.py"
COPY_LIMIT_MB = 50
# Folders of a submission that are not its code: neither copied for the child nor fingerprinted (nor *.pyc).
IGNORED_FOLDERS = ("__pycache__", ".git", ".ipynb_checkpoints")
_IGNORED = shutil.ignore_patterns(*IGNORED_FOLDERS, "*.pyc")
_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


class TargetError(ValueError):
    """The target is not a file, a folder with a submission, or a module name."""


@dataclass(frozen=True)
class Target:
    text: str               # as the user gave it
    kind: str               # "file", "directory", "package" or "module"
    module: str             # the name the child imports it under
    file: Path | None = None    # the submission's .py file (file and directory targets)
    folder: Path | None = None  # the folder copied whole (directory targets)
    submodule: str | None = None    # package targets: the module of the package whose names are checked (cs231n: layers)

    @property
    def name(self) -> str:
        """A short name for reports and batch outputs."""
        if self.kind in ("module", "package"):
            return self.module
        return (self.folder or self.file).name

    def request(self) -> dict:
        """How the child finds it (see child.load_module)."""
        return {"kind": self.kind, "module": self.module, "file": None if self.file is None else self.file.name,
                "cwd": os.getcwd(), "submodule": self.submodule}

    def copy_into(self, work: Path) -> None:
        """A private copy of the submission in ``work`` (the child's working directory)."""
        if self.kind == "directory":
            shutil.copytree(self.folder, work, ignore=_IGNORED, symlinks=True)
            return
        work.mkdir(parents=True)
        if self.kind == "file":
            shutil.copy2(self.file, work / self.file.name)
        elif self.kind == "package":     # under the name it is imported by (a form's package: whatever its folder)
            shutil.copytree(self.folder, work / self.module, ignore=_IGNORED, symlinks=True)

    def files(self) -> list[Path]:
        """The submission's files (empty for a module)."""
        if self.kind == "file":
            return [self.file]
        if self.kind == "module":
            return []
        return sorted(path for path in self.folder.rglob("*")
                      if path.is_file() and not path.is_symlink() and not set(IGNORED_FOLDERS).intersection(path.parts)
                      and path.suffix != ".pyc")

    def fingerprint(self) -> str:
        """SHA-256 over the submission's file names and bytes: a regraded submission that changed is seen."""
        digest = hashlib.sha256()
        base = self.folder or (self.file.parent if self.file else None)
        for path in self.files():
            digest.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes() + b"\0")
        if self.kind == "module":
            digest.update(self.module.encode())
        return digest.hexdigest()


def _python_file_in(folder: Path) -> Path:
    """simple_conv_net_func.py in the folder, else its only .py file."""
    if (folder / HANDOUT_FILE).is_file():
        return folder / HANDOUT_FILE
    candidates = sorted(folder.glob("*.py"))
    if len(candidates) == 1:
        return candidates[0]
    found = ", ".join(path.name for path in candidates) or "no .py file"
    raise TargetError(f"folder {folder} holds no {HANDOUT_FILE} and not exactly one .py file ({found})")


def resolve(text: str) -> Target:
    """The Target ``text`` names: a .py file; a folder holding simple_conv_net_func.py; a module name (imported
    where it is found, a package folder in the current directory included); a package folder given as a path;
    a folder holding one .py file."""
    path = Path(text).expanduser()
    from .forms import FORMS
    for form in FORMS.values():     # a form's own layout first (cs231n: layers.py, imported as the package cs231n)
        claimed = form.locate(path) if form.locate is not None and path.exists() else None
        if claimed is not None:
            _check_size(claimed.folder)
            return claimed
    if path.is_file():
        if path.suffix != ".py":
            raise TargetError(f"target {text!r} is a file but not a .py file")
        path = path.resolve()
        return Target(text, "file", path.stem, file=path)
    folder = path.resolve()
    if path.is_dir() and (folder / HANDOUT_FILE).is_file():
        return _folder_target(text, folder, folder / HANDOUT_FILE)
    if _MODULE_NAME.fullmatch(text) and (not path.is_dir() or (folder / "__init__.py").is_file()):
        return Target(text, "module", text)
    if path.is_dir():
        if (folder / "__init__.py").is_file():
            _check_size(folder)
            return Target(text, "package", folder.name, folder=folder)
        return _folder_target(text, folder, _python_file_in(folder))
    raise TargetError(f"target {text!r}: no such file or folder, and not a module name")


def _check_size(folder: Path) -> None:
    size = sum(p.stat().st_size for p in Target(str(folder), "directory", "", folder=folder).files())
    if size > COPY_LIMIT_MB << 20:
        raise TargetError(f"folder {folder} holds {size >> 20} MB: more than the {COPY_LIMIT_MB} MB the checker "
                          f"copies for each function; point it at the .py file instead")


def _folder_target(text: str, folder: Path, file: Path) -> Target:
    _check_size(folder)
    return Target(text, "directory", file.stem, file=file, folder=folder)

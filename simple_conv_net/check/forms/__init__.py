"""Every form the checker knows, one module each, and the registry that finds them.

handout      the homework's ``simple_conv_net_func.py`` (seed 000)          :mod:`.handout`
functional   torch.nn.functional's names and signatures (vector_ops...)      :mod:`.functional`
cs231n       CS231n assignment 2's ``cs231n/layers.py`` (numpy pairs)       :mod:`.cs231n`
lenet-dict   seed 003's LeNet in numpy dicts (CMU 10-601 hw7, its port)    :mod:`.lenet_dict`
model        an nn.Module class against a declared architecture (seed 001)  :mod:`.model`

A form is a :class:`~.base.Form` (the API, in :mod:`.base`); adding one is a module of this package
that builds one and a line below that registers it (docs/forms.md). The ops and native
PyTorch's twin of each are in :mod:`.ops`. An instructor's form file (``--form path/to/form.py``, a
module that builds ``FORM``, usually with :mod:`.adapter`) is registered by :func:`load_form`, and
named in each child's request (:func:`form_request`) so that the child loads it too (:func:`form_of`).

This package is imported by the checker's child processes too, so it needs torch alone (a form's
plans, rubric and analysis are imported when first used, in the parent).
"""

from __future__ import annotations

import ast
import sys
import types
from pathlib import Path

from .base import KINDS, Form, Function
from .ops import OPS, Op, native_call, register_op

FORMS: dict[str, Form] = {}
FILES: dict[str, str] = {}      # name -> the file of a form loaded with load_form (--form path/to/form.py)
SOURCES: dict[str, str] = {}    # name -> that file's source, as read when it was loaded


def register(form: Form) -> Form:
    """Make ``form`` known by its name (--form NAME, detection, the report's "form"); its own ops with it. Forms
    registered earlier win a tie in detection."""
    if form.name in FORMS and FORMS[form.name] is not form:
        raise ValueError(f"a form named {form.name!r} is already registered")
    for name, op in form.ops.items():
        register_op(name, op)
    FORMS[form.name] = form
    return form


def load_form(path, source: str | None = None) -> Form:
    """The form an instructor's file builds as ``FORM`` (see forms.adapter), imported and registered once. The file is
    trusted code, like a rubric: it runs in the checker's process, and in each child before the submission, from the
    ``source`` the request carries (a sandboxed child cannot see the file itself)."""
    path = Path(path).resolve()
    known = next((name for name, file in FILES.items() if file == str(path)), None)
    if known is not None:
        return FORMS[known]
    if source is None:
        if not path.is_file() or path.suffix != ".py":
            raise ValueError(f"--form {path}: expected a form's name or a Python file that builds FORM, got no such file")
        source = path.read_text()
    name = f"_checker_form_{len(FILES)}_{path.stem}"
    module = types.ModuleType(name)
    module.__file__ = str(path)
    sys.modules[name] = module
    try:
        exec(compile(source, str(path), "exec"), module.__dict__)
    except Exception as error:
        sys.modules.pop(name, None)
        raise ValueError(f"--form {path}: importing it raises {type(error).__name__}: {error}") from error
    form = getattr(module, "FORM", None)
    if not isinstance(form, Form):
        raise ValueError(f"--form {path}: expected the file to build a Form named FORM, got {type(form).__name__}")
    register(form)
    FILES[form.name] = str(path)
    SOURCES[form.name] = source
    return form


def form_request(name: str) -> dict:
    """What a child's request says of its form: the name, and the file and source of a form loaded from one."""
    return {"form": name, **({"form_file": FILES[name], "form_source": SOURCES[name]} if name in FILES else {})}


def form_of(request: dict) -> Form:
    """In the child: the request's form (built first from the source it carries, if it came from a file)."""
    if request.get("form_file"):
        load_form(request["form_file"], request["form_source"])
    return FORMS[request.get("form", "handout")]


def all_names() -> tuple[str, ...]:
    """Every name of every registered form, once (what discovery looks for)."""
    return tuple(dict.fromkeys(name for form in FORMS.values() for name in form))


def detect_form(defined) -> str | None:
    """The form whose signs ``defined`` holds most of (the one registered first on a tie), or None if it holds
    none."""
    defined = set(defined)
    counts = {name: len(defined.intersection(form.signs)) for name, form in FORMS.items()}
    best = max(counts.values(), default=0)
    return next((name for name, count in counts.items() if count == best), None) if best else None


def names_in_source(path: Path) -> set[str] | None:
    """Top-level names a Python file defines, read without running it (None if it does not parse)."""
    try:
        tree = ast.parse(Path(path).read_bytes())
    except (SyntaxError, ValueError, OSError):
        return None
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


from . import cs231n, functional, handout, lenet_dict, model  # noqa: E402 - the built-in forms, registered below

register(handout.FORM)
register(functional.FORM)
register(cs231n.FORM)
register(lenet_dict.FORM)
register(model.FORM)

HANDOUT = handout.FUNCTIONS
FUNCTIONAL = functional.FUNCTIONS
ALL_NAMES = all_names()     # the built-in forms' names (a form registered later: all_names())

__all__ = ["ALL_NAMES", "FILES", "FORMS", "FUNCTIONAL", "HANDOUT", "KINDS", "OPS", "Form", "Function", "Op", "all_names",
           "detect_form", "form_of", "form_request", "load_form", "names_in_source", "native_call", "register",
           "register_op"]

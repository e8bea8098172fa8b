"""Code written for older Python and NumPy: what an exception says, read as the one change a student must make.

Real submissions were written for Python 2 and for NumPy 1.x (CS231n's handouts date from 2015):
a print statement, ``xrange``, a size computed with ``/`` (a float under Python 3), NumPy's removed
aliases and functions (``np.float``, ``np.int``, ``np.bool``, ``np.product``, ``np.asscalar``,
``np.reshape(newshape=)``), an in-place operation NumPy refuses under ``same_kind`` casting, a
module the environment lacks (scipy, the course's Cython extension). :func:`advice` turns the
exception's record (runner.describe_error) into that change, or None when it is none of these.
"""

from __future__ import annotations

import importlib.util
import re

from .text import first_line, where

# name -> (the NumPy version that removed it, what to write instead)
REMOVED = {
    "product": ("2.0", "np.prod"), "cumproduct": ("2.0", "np.cumprod"), "sometrue": ("2.0", "np.any"),
    "alltrue": ("2.0", "np.all"), "float_": ("2.0", "np.float64"), "NaN": ("2.0", "np.nan"), "Inf": ("2.0", "np.inf"),
    "NAN": ("2.0", "np.nan"), "PINF": ("2.0", "np.inf"), "infty": ("2.0", "np.inf"), "round_": ("2.0", "np.round"),
    "float": ("1.24", "float or np.float64"), "int": ("1.24", "int or np.int64"), "bool": ("1.24", "bool or np.bool_"),
    "object": ("1.24", "object"), "complex": ("1.24", "complex or np.complex128"), "str": ("1.24", "str"),
    "long": ("1.24", "int"), "unicode": ("1.24", "str"), "asscalar": ("1.23", ".item()"),
}
PYTHON2 = {"xrange": "range", "raw_input": "input", "unicode": "str", "basestring": "str", "long": "int",
           "unichr": "chr", "reduce": "functools.reduce", "izip": "zip", "iteritems": "items"}


def _module_advice(missing: str) -> str:
    top = missing.split(".")[0]
    if missing.endswith("im2col_cython") or "_cython" in missing:
        return (f"No module named {missing!r}: the course's Cython extension, built by `python setup.py build_ext "
                f"--inplace`, is not in the submission (a .so or .pyd built elsewhere does not load here): write the "
                f"function with numpy alone")
    installed = importlib.util.find_spec(top) is not None
    return (f"No module named {missing!r}: {top} is {'installed' if installed else 'not installed'} where the "
            f"checker runs" + ("" if installed else " (the assignment allows numpy alone)"))


def advice(error: dict | None) -> str | None:
    """The change an exception asks for, when it is code written for older Python or NumPy (or a missing module)."""
    if not error:
        return None
    kind, message = error.get("type", ""), error.get("message", "")
    if kind == "SyntaxError" and "print" in message and "parenthes" in message:
        line = re.search(r"line (\d+)", message)
        return (f"a Python 2 print statement{f' at line {line.group(1)}' if line else ''}: a SyntaxError under "
                f"Python 3, so nothing in the file can run; use print(...)")
    if kind == "NameError":
        name = re.search(r"name '(\w+)' is not defined", message)
        if name and name.group(1) in PYTHON2:
            return f"name {name.group(1)!r} is not defined: Python 2's {name.group(1)}; use {PYTHON2[name.group(1)]}"
    if kind == "TypeError" and "'float' object cannot be interpreted as an integer" in message:
        return ("'float' object cannot be interpreted as an integer: a size computed with / (Python 3's true division "
                "gives a float); use //")
    if kind == "TypeError" and "newshape" in message:
        return "np.reshape's newshape= keyword is gone (deprecated in NumPy 2.1): use shape= or pass the shape by position"
    if kind == "AttributeError":
        name = re.search(r"module 'numpy' has no attribute '(\w+)'", message)
        if name and name.group(1) in REMOVED:
            version, instead = REMOVED[name.group(1)]
            return f"np.{name.group(1)} was removed in NumPy {version}: use {instead}"
    if kind in ("UFuncTypeError", "UFuncOutputCastingError", "_UFuncOutputCastingError") or \
            ("Cannot cast ufunc" in message and "same_kind" in message):
        return ("an in-place operation (such as mask /= p on a bool mask) whose result NumPy cannot cast back into the "
                "array's dtype under same_kind: write a new array (mask = mask / p)")
    if kind in ("ModuleNotFoundError", "ImportError"):
        missing = re.search(r"No module named '([\w.]+)'", message)
        if missing:
            return _module_advice(missing.group(1))
    return None


def import_text(error: dict) -> str:
    """Importing the module failed: the advice first, when there is one, then the error."""
    said = f"importing the module raises {error['type']}: {first_line(error['message'])}{where(error['traceback'])}"
    found = advice(error)
    return f"{found}; {said}" if found else said

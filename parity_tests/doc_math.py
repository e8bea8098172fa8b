"""The numbered equations of docs/derivations.md, read and evaluated literally (the test side of that page).

Each display equation of the page is followed by an HTML comment holding the same equation in a
small index language, one of

    <!-- check F1: z_conv[n,c_out,m,l] = sum[c_in,i,j](x[n,c_in,m+i-1,l+j-1] * w_conv[c_out,c_in,i,j]) + b_conv[c_out] -->
    <!-- wrong: ... -->          (a typical error, shown on the page; the tests require that it fails)

The language is Python syntax read with the page's conventions:

* ``T[i, j]`` reads tensor T at 1-based indices, and an index outside the tensor is an error
  (``zero_outside(T)[...]`` reads 0 there instead); ``T[n]`` with fewer indices than dimensions is
  the sub-array (a matrix, for ``@``); a bare ``T`` is the whole array;
* ``sum[i, j](expr)`` and ``max[r](expr)`` sum or maximise over the named indices, whose ranges are
  the sizes of the dimensions they index, read from the reference tensors; ``max(a, b)`` is Python's;
* the indices of the left-hand side are free: the right-hand side is evaluated for every value of
  them, and ``=`` must write every entry exactly once, ``+=`` adds into zeros (scatter form);
* sizes (``N``, ``K``, ``S_c``, ...) are integers; ``rho(c, m, l)`` is the reshape's index map.

:func:`evaluate` computes an equation from the reference values of the tensors on its right-hand side
(never from another equation's result, so each equation is checked on its own); :func:`latex_refs` and
:func:`spec_refs` list the tensors an equation reads and writes with their index expressions,
normalised so that the LaTeX and the comment can be compared; :func:`mutants` makes the wrong
variants that show the checks see every index.
"""

from __future__ import annotations

import ast
import copy
import functools
import itertools
import math
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

REDUCERS = ("sum", "max")
FUNCTIONS = {"ceil": math.ceil, "exp": np.exp, "log": np.log, "max": max, "maximum": np.maximum,
             "outer": np.outer, "ones": np.ones}
INDEX_MAPS = ("rho",)                    # tensors written as calls, rho(c, m, l), in the LaTeX and the comments
LAYER_TAGS = ("conv", "pool", "reshaped", "fc1", "relu", "fc2")


class SpecError(ValueError):
    """An equation that cannot be evaluated as written (unbound index, index out of range, ...)."""


@dataclass
class Equation:
    tag: str | None          # "F1", ... (None for a 'wrong' example)
    latex: str               # the display's content, between the $$
    spec: str                # the comment's equation
    line: int                # where the display starts in the page (1-based)


DISPLAY = re.compile(r"\$\$(?P<latex>(?:(?!\$\$).)+)\$\$\s*<!--\s*(?P<kind>check|wrong)(?:\s+(?P<label>[A-Z]+\d+))?\s*:"
                     r"\s*(?P<spec>.+?)\s*-->", re.S)
TAG = re.compile(r"\\tag\{([A-Z]+\d+)\}")


def displays(text: str):
    """(checked, wrong, bare): the page's display equations followed by a check comment, by a wrong
    comment, and the line numbers of displays followed by neither."""
    checked, wrong, covered = [], [], set()
    for match in DISPLAY.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        covered.add(match.start())
        tags = TAG.findall(match["latex"])
        if match["kind"] == "check":
            if tags != [match["label"]]:
                raise SpecError(f"line {line}: the check is labelled {match['label']} but the display is tagged {tags}")
            checked.append(Equation(match["label"], match["latex"], match["spec"], line))
        else:
            if tags:
                raise SpecError(f"line {line}: a wrong example must not carry an equation number ({tags})")
            wrong.append(Equation(None, match["latex"], match["spec"], line))
    bare = [text.count("\n", 0, m.start()) + 1 for m in re.finditer(r"\$\$.+?\$\$", text, re.S)
            if m.start() not in covered]
    return checked, wrong, bare


# ---- the comment's equation ----------------------------------------------------------------------

def split_spec(spec: str):
    """(lhs AST, op, rhs AST, {index: size name}) of 'lhs = rhs' or 'lhs += rhs', followed by optional
    '; i,j: K' clauses giving the ranges of indices that index no dimension bare."""
    equation, *clauses = spec.split(";")
    match = re.search(r"\s(\+?=)\s", equation)          # the first: the left-hand side holds no '='
    if not match:
        raise SpecError(f"not an equation: {spec!r}")
    lhs, op, rhs = equation[:match.start()], match[1], equation[match.end():]
    ranges = {}
    for clause in clauses:
        names, _, size = clause.partition(":")
        for name in names.split(","):
            ranges[name.strip()] = size.strip()
    try:
        return ast.parse(lhs.strip(), mode="eval").body, op, ast.parse(rhs.strip(), mode="eval").body, ranges
    except SyntaxError as error:
        raise SpecError(f"{spec!r}: {error}") from None


def indices_of(node) -> list:
    """The index expressions of a subscript or an index-map call."""
    if isinstance(node, ast.Subscript):
        return list(node.slice.elts) if isinstance(node.slice, ast.Tuple) else [node.slice]
    return list(node.args)


def reducer(node):
    """('sum'|'max', [index names], body) for sum[i, j](body), else None."""
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Subscript) and isinstance(node.func.value, ast.Name)
            and node.func.value.id in REDUCERS and len(node.args) == 1):
        names = indices_of(node.func)
        if not all(isinstance(name, ast.Name) for name in names):
            raise SpecError(f"{ast.unparse(node.func)}: reduce over index names only")
        return node.func.value.id, [name.id for name in names], node.args[0]
    return None


def access(node, tensors):
    """(tensor name, index nodes, zero outside?) for T[...], zero_outside(T)[...] or rho(...); else None."""
    if isinstance(node, ast.Subscript):
        target = node.value
        if isinstance(target, ast.Name) and target.id in tensors:
            return target.id, indices_of(node), False
        if (isinstance(target, ast.Call) and isinstance(target.func, ast.Name) and target.func.id == "zero_outside"
                and len(target.args) == 1 and isinstance(target.args[0], ast.Name) and target.args[0].id in tensors):
            return target.args[0].id, indices_of(node), True
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in INDEX_MAPS:
        return node.func.id, list(node.args), False
    return None


def normalise_spec_index(node) -> str:
    return ast.unparse(node).replace(" ", "").replace("**", "^").replace("*", "")


def spec_refs(spec: str, tensors) -> tuple[Counter, Counter]:
    """(Counter of (tensor, index strings), Counter of reduced index names) over both sides of ``spec``."""
    lhs, _, rhs, _ = split_spec(spec)
    refs, reduced = Counter(), Counter()

    def walk(node):
        found = access(node, tensors)
        if found:
            refs[(found[0], tuple(normalise_spec_index(i) for i in found[1]))] += 1
            return                                   # index expressions are compared as text, not walked
        if isinstance(node, ast.Name) and node.id in tensors:
            refs[(node.id, ())] += 1
            return
        found = reducer(node)
        if found:
            reduced.update(found[1])
            walk(found[2])
            return
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(lhs)
    walk(rhs)
    return refs, reduced


def ranges_of(lhs, rhs, tensors, shapes, sizes, given=None) -> dict[str, int]:
    """Each index name's range, from the dimensions it indexes bare and the clauses ``given``
    ({index: size name}); a name given two ranges is an error."""
    found: dict[str, int] = {}
    for name, size in (given or {}).items():
        if size not in sizes and not size.isdigit():
            raise SpecError(f"unknown size {size!r} for index {name}")
        found[name] = sizes[size] if size in sizes else int(size)

    def walk(node):
        hit = access(node, tensors)
        if hit:
            name, indices, _ = hit
            shape = shapes[name]
            if len(indices) > len(shape):
                raise SpecError(f"{name} has {len(shape)} dimensions, indexed by {len(indices)}")
            for position, index in enumerate(indices):
                if isinstance(index, ast.Name) and index.id not in shapes and index.id not in sizes:
                    size = shape[position]
                    if found.setdefault(index.id, size) != size:
                        raise SpecError(f"index {index.id} ranges over {found[index.id]} and {size}")
        for child in ast.iter_child_nodes(node):
            walk(child)

    walk(lhs)
    walk(rhs)
    return found


def free_names(node, bound) -> set[str]:
    """Names read by ``node`` that no enclosing reducer binds."""
    names = set()
    found = reducer(node)
    if found:
        return free_names(found[2], bound | set(found[1]))
    if isinstance(node, ast.Name):
        return {node.id} - bound
    for child in ast.iter_child_nodes(node):
        names |= free_names(child, bound)
    return names


def reduced_names(node) -> set[str]:
    """Every index name some reducer in ``node`` binds."""
    found = reducer(node)
    if found:
        return set(found[1]) | reduced_names(found[2])
    return set().union(*(reduced_names(child) for child in ast.iter_child_nodes(node)))


class Compile(ast.NodeTransformer):
    """Rewrites the language into plain Python over the namespace of :func:`evaluate`: in a loop
    (``broadcast=False``) a reducer is a generator over its indices' ranges; over a grid each reducer's
    indices get axes of their own (renamed apart, ``bound``: unique name -> (axis, index name)) and the
    reducer folds them."""

    def __init__(self, tensors, broadcast: bool):
        self.tensors, self.broadcast = tensors, broadcast
        self.bound: dict[str, tuple[int, str]] = {}
        self.scopes: list[dict[str, str]] = []
        self.axes = 0

    def compile(self, node, axes: int = 0):
        self.axes = max(self.axes, axes)
        tree = self.visit(ast.Expression(copy.deepcopy(node)))
        return compile(ast.fix_missing_locations(tree), "<spec>", "eval")

    def visit_Name(self, node):
        for scope in reversed(self.scopes):
            if node.id in scope:
                return ast.Name(scope[node.id], ast.Load())
        return node

    def visit_Call(self, node):
        found = reducer(node)
        if found:
            kind, names, body = found
            if not self.broadcast:
                generators = [ast.comprehension(target=ast.Name(name, ast.Store()),
                                                iter=ast.Call(ast.Name("_range", ast.Load()), [ast.Constant(name)], []),
                                                ifs=[], is_async=0) for name in names]
                return ast.Call(ast.Name(f"_{kind}", ast.Load()), [ast.GeneratorExp(self.visit(body), generators)], [])
            scope = {}
            for name in names:
                scope[name] = f"{name}__{self.axes}"
                self.bound[scope[name]] = (self.axes, name)
                self.axes += 1
            self.scopes.append(scope)
            body = self.visit(body)
            self.scopes.pop()
            folded = ast.List([ast.Constant(scope[name]) for name in names], ast.Load())
            return ast.Call(ast.Name("_reduce", ast.Load()), [ast.Constant(kind), body, folded], [])
        hit = access(node, self.tensors)
        if hit:
            return self.read(*hit)
        return self.generic_visit(node)

    def visit_Subscript(self, node):
        hit = access(node, self.tensors)
        if hit:
            return self.read(*hit)
        return self.generic_visit(node)

    def read(self, name, indices, zero):
        return ast.Call(ast.Name("_at", ast.Load()),
                        [ast.Constant(name), ast.Tuple([self.visit(i) for i in indices], ast.Load()), ast.Constant(zero)], [])


def evaluate(spec: str, values: dict[str, np.ndarray], sizes: dict[str, int]) -> np.ndarray:
    """The left-hand side of ``spec`` computed from ``values`` (the reference of every tensor; the
    left-hand side's own reference gives only its shape).

    An equation between entries (every tensor indexed in full) is evaluated for all its indices at
    once, each index an axis of a broadcast grid and each sum a sum over its axes (an einsum written
    from the equation's own indices); an equation between matrices (``Z[n] = W @ X[n]``) in a loop
    over its free indices. Both read the tensors through the same checked 1-based indexing."""
    lhs, op, rhs, given = split_spec(spec)
    tensors = set(values)
    target = access(lhs, tensors)
    if target:
        name, lhs_indices, _ = target
    elif isinstance(lhs, ast.Name) and lhs.id in tensors:
        name, lhs_indices = lhs.id, []
    else:
        raise SpecError(f"the left-hand side {ast.unparse(lhs)} is not a tensor")
    shapes = {key: np.shape(value) for key, value in values.items()}
    ranges = ranges_of(lhs, rhs, tensors, shapes, sizes, given)
    known = tensors | set(sizes) | set(FUNCTIONS) | {"zero_outside"}
    free = sorted(set().union(set(), *(free_names(i, set()) for i in lhs_indices)) - known)
    clash = set(free) & reduced_names(rhs)
    if clash:
        raise SpecError(f"{sorted(clash)} both free (on the left) and summed over")
    unbound = free_names(rhs, set()) - set(free) - known
    if unbound:
        raise SpecError(f"unbound names {sorted(unbound)}")
    missing = [v for v in free + sorted(reduced_names(rhs)) if v not in ranges]
    if missing:
        raise SpecError(f"no range for {missing}: an index must index some dimension bare")

    def at(tensor, index, zero=False):
        """values[tensor] at 1-based ``index`` (integers, or integer grids): outside it is an error, or 0."""
        array = values[tensor]
        index = [np.asarray(i) for i in index]
        inside = True
        for i, size in zip(index, array.shape):
            if i.dtype.kind not in "iu":
                raise SpecError(f"{tensor}: index {i.flat[0]!r} is not an integer")
            ok = (i >= 1) & (i <= size)
            if not zero and not ok.all():
                raise SpecError(f"{tensor}: index {np.atleast_1d(i)[~np.atleast_1d(ok)][0]} outside 1..{size}")
            inside = inside & ok
        picked = array[tuple(np.clip(i, 1, size) - 1 for i, size in zip(index, array.shape))]
        return np.where(inside, picked, 0.0) if zero else picked

    refs, _ = spec_refs(spec, tensors)
    elementwise = all(len(indices) == len(shapes[tensor]) for tensor, indices in refs)
    evaluate_all = over_grid if elementwise else over_loops
    contributions, where = evaluate_all(rhs, lhs_indices, free, ranges, {**sizes, **values, "_at": at}, tensors)
    return written(name, shapes[name], op, contributions, where)


def over_grid(rhs, lhs_indices, free, ranges, namespace, tensors):
    """(values [count], left-hand positions [count, k]) with every index an axis of one broadcast grid."""
    vector = Compile(tensors, broadcast=True)
    code = vector.compile(rhs, axes=len(free))
    axes = {name: (axis, ranges[name]) for axis, name in enumerate(free)}
    axes.update({unique: (axis, ranges[name]) for unique, (axis, name) in vector.bound.items()})
    total = len(free) + len(vector.bound)

    def grid(axis, size):
        return np.arange(1, size + 1).reshape([size if a == axis else 1 for a in range(total)])

    def reduce(kind, body, reduced):
        shape = [1] * total
        for name in reduced:
            shape[axes[name][0]] = axes[name][1]
        body = np.asarray(body) * np.ones(shape)             # a body that does not read an index still counts it
        folded = tuple(axes[name][0] for name in reduced)
        return body.sum(axis=folded, keepdims=True) if kind == "sum" else body.max(axis=folded, keepdims=True)

    namespace = {**FUNCTIONS, **namespace, "_reduce": reduce,
                 "max": lambda *args: functools.reduce(np.maximum, args),
                 "ceil": lambda a: np.ceil(a).astype(np.int64),
                 **{name: grid(*axes[name]) for name in axes}}
    shape = [ranges[name] for name in free]
    full = np.broadcast_to(eval(code, namespace), shape + [1] * (total - len(free))).reshape(shape)
    where = [np.broadcast_to(eval(vector.compile(i, axes=total), namespace), shape + [1] * (total - len(free)))
             for i in lhs_indices]
    return full.reshape(-1), np.stack([w.reshape(-1) for w in where], axis=1) if where else np.zeros((1, 0), int)


def over_loops(rhs, lhs_indices, free, ranges, namespace, tensors):
    """(values [count, ...], left-hand positions [count, k]) in a loop over the free indices."""
    compiler = Compile(tensors, broadcast=False)
    code = compiler.compile(rhs)
    positions = [compiler.compile(i) for i in lhs_indices]
    namespace = {**FUNCTIONS, **namespace, "_sum": sum, "_max": max, "_range": lambda v: range(1, ranges[v] + 1)}
    contributions, where = [], []
    for assignment in itertools.product(*(range(1, ranges[v] + 1) for v in free)):
        namespace.update(zip(free, assignment))
        contributions.append(eval(code, namespace))
        where.append([eval(p, namespace) for p in positions])
    return np.array(contributions), np.array(where, dtype=object).reshape(len(where), len(lhs_indices))


def written(name, shape, op, contributions, where) -> np.ndarray:
    """The left-hand side after writing (=) or adding (+=) each contribution at its 1-based position:
    a position outside the tensor is an error, and '=' must write every entry exactly once."""
    if where.shape[1] == 0:                                  # the whole tensor at once: L = ..., z_fc1 = ...
        return np.broadcast_to(contributions[0], shape).astype(float)
    for column, size in enumerate(shape[:where.shape[1]]):
        for i in where[:, column]:
            if not isinstance(i, (int, np.integer)) or not 1 <= i <= size:
                raise SpecError(f"{name}: index {i!r} outside 1..{size}")
    slots = tuple(where[:, column].astype(np.int64) - 1 for column in range(where.shape[1]))
    out = np.zeros(shape)
    if op == "+=":
        np.add.at(out, slots, contributions)
        return out
    count = np.zeros(shape[:where.shape[1]], dtype=int)
    np.add.at(count, slots, 1)
    if not (count == 1).all():
        raise SpecError(f"{name}: {int((count == 0).sum())} entries never written, "
                        f"{int((count > 1).sum())} written more than once")
    out[slots] = contributions
    return out


# ---- the LaTeX -----------------------------------------------------------------------------------

SKIP_WITH_ARGUMENT = ("mathbf", "mathrm", "text", "operatorname", "tag", "mathrel")


def braced(text: str, start: int) -> tuple[str, int]:
    """The content of the group at ``start`` ({...} or one character) and the position after it."""
    while start < len(text) and text[start] == " ":
        start += 1
    if start >= len(text):
        return "", start
    if text[start] != "{":
        if text[start] == "\\":
            end = start + 1
            while end < len(text) and text[end].isalpha():
                end += 1
            return text[start:end], end
        return text[start], start + 1
    depth = 0
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0:
            return text[start + 1:end], end + 1
    raise SpecError(f"unbalanced braces in {text[start:start + 40]!r}")


def scripts(text: str, position: int) -> tuple[str | None, str | None, int]:
    """(superscript, subscript, position after them), in either order."""
    sup = sub = None
    while True:
        probe = position
        while probe < len(text) and text[probe] == " ":
            probe += 1
        if probe < len(text) and text[probe] in "^_":
            content, position = braced(text, probe + 1)
            if text[probe] == "^":
                sup = content
            else:
                sub = content
        else:
            return sup, sub, position


def normalise_latex_index(index: str) -> str:
    index = re.sub(r"\\lceil(.*?)\\rceil", r"ceil(\1)", index)
    for space in ("\\,", "\\;", "\\!", "\\cdot", "{", "}"):
        index = index.replace(space, "")
    index = re.sub(r"\s+", "", index)
    return re.sub(r"\\([A-Za-z]+)", r"\1", index)          # \rho(c,m,l) is rho(c,m,l)


def split_top(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current]


def latex_refs(latex: str, tensors) -> tuple[Counter, Counter, list[tuple[str, str]]]:
    """(Counter of (tensor, index strings), Counter of reduced index names, [(index name, upper limit)])
    of a display, with the names of the comments: z^{(conv)} is z_conv, \\hat{X} is Xhat, the tensor
    under \\partial (in dL/d...) gets the prefix dL_d, and L in the numerator is left out."""
    refs, reduced, limits = Counter(), Counter(), []
    position, partial = 0, False
    while position < len(latex):
        char = latex[position]
        if char == "\\":
            command, position = braced(latex, position)
            word = command[1:]
            if word in ("sum", "max"):
                sup, sub, after = scripts(latex, position)
                if sub is not None:
                    name, _, lower = normalise_latex_index(sub).partition("=")
                    reduced[name] += 1
                    limits.append((name, normalise_latex_index(sup or "")))
                    if lower not in ("", "1"):
                        raise SpecError(f"\\{word}_{{{sub}}}: indices start at 1")
                position = after
                continue
            if word == "partial":
                partial = True
                continue
            if word in SKIP_WITH_ARGUMENT:
                _, position = braced(latex, position)
                _, _, position = scripts(latex, position)
                continue
            if word == "hat":
                base, position = braced(latex, position)
                base = base.strip() + "hat"
            elif word in ("delta", "Delta", "rho"):
                base = word
            else:
                continue
        elif char.isalpha():
            base, position = char, position + 1
        elif char in "^_":
            _, position = braced(latex, position + 1)     # a script on a bracket: (.)^T
            continue
        else:
            position += 1
            continue
        sup, sub, position = scripts(latex, position)
        indices = []
        name = base
        if sup is not None:
            inner = normalise_latex_index(sup)
            if inner.startswith("(") and inner.endswith(")"):
                if inner[1:-1] in LAYER_TAGS:
                    name = f"{base}_{inner[1:-1]}"
                else:
                    indices += split_top(inner[1:-1])
        if sub is not None:
            indices += split_top(normalise_latex_index(sub))
        if name in INDEX_MAPS and latex[position:position + 1] == "(":
            depth, end = 0, position
            for end in range(position, len(latex)):
                depth += {"(": 1, ")": -1}.get(latex[end], 0)
                if depth == 0:
                    break
            indices += split_top(normalise_latex_index(latex[position + 1:end]))
            position = end + 1
        if partial:
            partial = False
            if name == "L":
                continue
            name = f"dL_d{name}"
        if name in tensors:
            refs[(name, tuple(indices))] += 1
    return refs, reduced, limits


def size_of(expression: str, sizes: dict[str, int]) -> int:
    """The value of a size written in LaTeX: a product of size symbols, powers and integers (C_{in}K^2)."""
    text = normalise_latex_index(expression).replace("\\times", "")
    value = 1
    for symbol, number, power in re.findall(r"([A-Z](?:_[a-z]+)?)|(\d+)|\^(\d+)", text):
        if power:
            value *= last ** (int(power) - 1)
        elif number:
            last = int(number)
            value *= last
        else:
            if symbol not in sizes:
                raise SpecError(f"unknown size {symbol} in {expression!r}")
            last = sizes[symbol]
            value *= last
    if re.sub(r"[A-Z](?:_[a-z]+)?|\d+|\^\d+", "", text):
        raise SpecError(f"cannot read the size {expression!r}")
    return value


def spec_ranges(spec: str, values: dict[str, np.ndarray], sizes: dict[str, int]) -> dict[str, int]:
    """The range of every index of ``spec`` (as :func:`evaluate` uses them)."""
    lhs, _, rhs, given = split_spec(spec)
    return ranges_of(lhs, rhs, set(values), {k: np.shape(v) for k, v in values.items()}, sizes, given)


def rhs_text(latex: str) -> str:
    """The right-hand side of a display, normalised as an index expression (for equations whose right
    side is index arithmetic alone)."""
    body = TAG.sub("", latex)
    return normalise_latex_index(body.partition("=")[2])


def canonical(spec: str, rename: dict[str, str] | None = None) -> str:
    """``spec`` with index names renamed and each reducer's names sorted: equal for two ways of
    writing the same sum."""
    lhs, op, rhs, given = split_spec(spec)
    rename = rename or {}

    class Rename(ast.NodeTransformer):
        def visit_Name(self, node):
            return ast.Name(rename.get(node.id, node.id), node.ctx)

        def visit_Call(self, node):
            self.generic_visit(node)
            if reducer(node) and isinstance(node.func.slice, ast.Tuple):
                node.func.slice.elts.sort(key=lambda name: name.id)
            return node

    clauses = sorted((rename.get(name, name), size) for name, size in given.items())
    return f"{ast.unparse(Rename().visit(lhs))} {op} {ast.unparse(Rename().visit(rhs))} {clauses}"


def mutants(spec: str, tensors):
    """``spec`` with two index expressions of one tensor access swapped, for every access and pair
    whose expressions differ: each reads or writes other entries than the equation does. (A swap of
    two summed indices that appear nowhere else only renames them; those are left out.)"""
    lhs, op, rhs, given = split_spec(spec)
    clauses = "".join(f"; {name}: {size}" for name, size in given.items())
    original = canonical(spec)
    accesses = []
    for side in (lhs, rhs):
        accesses += [node for node in ast.walk(side) if access(node, tensors)]
    for node in accesses:
        # the AST's own list, so that swapping in it changes what ast.unparse writes
        indices = node.args if isinstance(node, ast.Call) else getattr(node.slice, "elts", [node.slice])
        for a, b in itertools.combinations(range(len(indices)), 2):
            if ast.unparse(indices[a]) == ast.unparse(indices[b]):
                continue
            indices[a], indices[b] = indices[b], indices[a]
            mutant = f"{ast.unparse(lhs)} {op} {ast.unparse(rhs)}{clauses}"
            indices[a], indices[b] = indices[b], indices[a]
            names = [ast.unparse(indices[a]), ast.unparse(indices[b])]
            if all(name.isidentifier() for name in names):
                if canonical(mutant, {names[0]: names[1], names[1]: names[0]}) == original:
                    continue
            yield mutant

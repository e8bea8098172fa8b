"""The form API: what a form declares, so that the checker can find, call and judge a module written in it.

A *form* is one way of writing the ops (:mod:`.ops`) as a module: which names it defines, how the
checker's canonical inputs (torch tensors, named as the op names them) become the arguments of
those names, how their results come back, and what native PyTorch computes for each. Each form is
one module of this package that builds a :class:`Form` and registers it (see ``__init__``);
docs/forms.md walks through adding one.

A form's functions are of four kinds:

function   one call, one result: the output is compared with native's; with inputs that require
           grad, autograd through the candidate's output is compared with native's (handout and
           functional forms).
forward    the forward half of a forward/backward pair: returns its output and a cache.
backward   the other half: called on the cache its forward returned, with the upstream gradient,
           it returns the gradients of the forward's inputs named by ``grads``, in that order.
loss       returns (loss, gradient of the loss with respect to ``grads``), like cs231n's softmax_loss.

A pair is two :class:`Function` entries that name each other (``pair``); each is judged and
scored on its own, so a report has an entry per name the module defines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

KINDS = ("function", "forward", "backward", "loss")


class Function(NamedTuple):
    """One function a candidate module may define."""

    name: str
    op: str                       # the op it computes (a key of ops.OPS): what native PyTorch runs as the oracle
    parameters: tuple[str, ...]   # the form's own argument list (handout, cs231n) or the leading ones (functional)
    scalar: bool = False          # Python loops expected: small batches, forward only
    graded: bool = True           # False: reported, never part of a rubric's default items
    homework: bool = False        # the handout's: its rules apply (im2col by hand, see scratch)
    kind: str = "function"        # one of KINDS
    pair: str | None = None       # forward: the name of its backward; backward: of its forward
    grads: tuple[str, ...] = ()   # backward, loss: the op inputs whose gradients it returns, in its order


def default_call_style(function: Function, found: dict) -> tuple[object, str | None]:
    """(the style the plan calls it in, a note on its signature): every form but the handout's calls as planned."""
    return True, None


@dataclass(frozen=True, eq=False)
class Form(Mapping):
    """A form: its functions (it is the mapping name -> Function, in the order reports list them) and the hooks
    the checker calls. Only ``name``, ``about``, ``functions``, ``plan`` and ``default_rubric`` are required.

    plan(function, settings, material, found, style) -> (calls, why)
        the calls (plans.Call) the checker makes of one function, stage by stage, or ([], why) when it cannot
        be called. ``settings``: plans.Settings; ``material()``: the shared weights and MNIST images
        (plans.Material, loaded on first use); ``found``: what discovery saw of the name (its signature);
        ``style``: what ``call_style`` said. A call's ``inputs`` are the canonical tensors native PyTorch gets
        (with ``options``), its ``args``/``kwargs`` what the candidate gets ({"ref": name} for an input).
    default_rubric(report) -> rubric.Rubric
        the rubric of a report of this form when no --rubric is given.
    signs
        the names that detect the form (default: all its functions'); see forms.detect_form.
    call_style(function, found) -> (style, note)
        how to call a function given its signature; style None: it cannot be called (an error, with the note).
    run_call(module, name, request) -> record
        in the child: run one call of ``name`` (a request, see runner) and return its record. Default: runner.run_call
        on ``getattr(module, name)`` with torch tensors. A form whose functions take other types (numpy arrays,
        dicts) converts here, both ways; the record holds torch tensors and plain data only.
    analyse(function, calls, result, settings) -> analysis.FunctionResult
        in the parent: judge one function from what ran. Default: analysis.analyse.
    locate(path) -> targets.Target | None
        claim a path the user gave (a file or folder in this form's layout, imported in its own way), or None.
    trains
        whether task 3 (training SimpleConvNet from the module's functions) applies.
    optional
        whether a function the module does not define is simply missing (it does not fail the report).
    rule
        the feedback's paragraph on how a result is judged (default: report.RULE, the handout's and functional's).
    """

    name: str
    about: str
    functions: dict
    plan: Callable
    default_rubric: Callable
    signs: tuple = ()
    call_style: Callable = default_call_style
    run_call: Callable | None = None
    analyse: Callable | None = None
    locate: Callable | None = None
    trains: bool = False
    optional: bool = False
    rule: str | None = None
    ops: dict = field(default_factory=dict)    # the form's own ops (name -> ops.Op), registered with it

    def __post_init__(self) -> None:
        for function in self.functions.values():
            if function.kind not in KINDS:
                raise ValueError(f"form {self.name}: {function.name} has kind {function.kind!r}, not one of {KINDS}")
            if function.kind in ("forward", "backward") and function.pair not in self.functions:
                raise ValueError(f"form {self.name}: {function.name}'s pair {function.pair!r} is not one of its "
                                 f"functions")
        if not self.signs:
            object.__setattr__(self, "signs", tuple(self.functions))

    def __getitem__(self, name: str) -> Function:
        return self.functions[name]

    def __iter__(self):
        return iter(self.functions)

    def __len__(self) -> int:
        return len(self.functions)

    def call(self, module, name: str, request: dict) -> dict:
        """Run one call request of ``name`` in ``module`` (in the child, or in-process in the tests): its record."""
        if self.run_call is not None:
            return self.run_call(module, name, request)
        from .. import runner
        return runner.run_call(getattr(module, name), request)

    def judge(self, function: Function, calls: list, result, settings):
        """One function's FunctionResult from what its calls did (in the parent)."""
        if self.analyse is not None:
            return self.analyse(function, calls, result, settings)
        from .. import analysis
        return analysis.analyse(function, calls, result)

    def pairs(self) -> list[tuple[Function, Function]]:
        """(forward, backward) of every pair, in the forwards' order."""
        return [(f, self.functions[f.pair]) for f in self.functions.values() if f.kind == "forward"]

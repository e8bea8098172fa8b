"""Why a function fails: causes tested numerically against native PyTorch, each with its evidence.

Every diagnosis is a hypothesis the recorded numbers confirm, never a guess from source text, and
only from calls that ran (the caller passes those alone):

- NaN or huge values in the output for finite inputs: memory never written (the child fills
  what torch.empty returns with NaN, see runner), whatever else is wrong;
- a likely mistake (:mod:`.hypotheses`: the kernel flipped, the bias added twice, the windows
  shifted, taken at stride 1 into a smaller output...) whose native variant matches the
  candidate's output by compare's rule, on the entries it wrote; where no single one does, two
  at once (real bugs come in pairs);
- where the output is wrong: only at some filters, samples, rows or columns (only the first
  filter computed, the last column never written), with the values found there;
- samples mixed up: each output sample matches native's result for another input sample (once
  two batch sizes have run);
- the batch size hard-coded: right at one batch size and wrong at others of the same shapes
  (two batch sizes that ran, at least);
- arguments changed in place, two calls on the same input that differ (uninitialised memory),
  the dtype or device changed; a parameter the output does not depend on at all (never used);
- the autograd graph cut (the output does not require grad, is a new leaf, or one input gets no
  gradient), an error in backward, a wrong gradient (with its own hypotheses); at kinks (ReLU at
  exactly 0, a max-pool window with tied maxima) a gradient that differs from PyTorch's only there
  is a valid subgradient: a note, not a failure (:mod:`.kinks`);
- PyTorch's own op called instead of the equation (:mod:`.scratch`).

Where nothing fits it says so and shows the worst entries.
"""

from __future__ import annotations

import torch

from ..compare import compare, unravel
from . import drift, scratch
from .forms import native_call
from .hypotheses import hypotheses, pairs
from .kinks import kink_note
from .text import at, error_text, evidence, first_line, number, where

HUGE = 1e6     # an output entry this many times larger than any of native's is no computed value

AXES = {"conv2d": ("sample", "filter", "row", "column"), "max_pool2d": ("sample", "channel", "row", "column"),
        "linear": ("sample", "output"), "flatten": ("sample", "feature"), "relu": ("sample", "unit"),
        "log_softmax": ("sample", "class"), "batch_norm": ("sample", "channel", "row", "column")}


# ----------------------------------------------------------------------------- wrong values


def _inputs64(call) -> dict:
    return {k: None if v is None else (v.double() if v.is_floating_point() else v.clone())
            for k, v in call.inputs.items()}


def unwritten(s) -> torch.Tensor | None:
    """The entries of the output that hold NaN, infinities or huge values though every input is finite (None when
    there are none, or the inputs are not finite themselves)."""
    if s.output is None or not s.output.is_floating_point() or s.output.shape != s.truth.exact.output.shape:
        return None
    if not all(t.isfinite().all() for t in s.call.inputs.values() if t is not None and t.is_floating_point()):
        return None
    scale = s.truth.exact.output.abs().max().item() or 1.0
    insane = ~s.output.isfinite() | (s.output.double().abs() > HUGE * scale)
    return insane if insane.any() else None


def _compared(hypothesis, s, inputs: dict, insane) -> str | None:
    """The finding if ``hypothesis``'s output matches the candidate's (where it wrote something, when ``insane``
    marks entries it did not), else None."""
    try:
        predicted = hypothesis.predict(dict(inputs), dict(s.call.options))
    except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError):
        return None
    if predicted is None:
        return None
    candidate, keep = s.output, None if insane is None else ~insane
    if hypothesis.interior:
        if predicted.dim() != 4 or predicted.shape != candidate.shape or min(predicted.shape[2:]) < 3:
            return None
        predicted, candidate = predicted[..., 1:-1, 1:-1], candidate[..., 1:-1, 1:-1]
        keep = None if keep is None else keep[..., 1:-1, 1:-1]
    result = compare(predicted, candidate, dtype=s.truth.dtype)
    if not result.passed and keep is not None:     # the same on the entries it wrote
        if predicted.shape != candidate.shape or keep.sum() < keep.numel() / 2:
            return None
        result = compare(predicted[keep], candidate[keep], dtype=s.truth.dtype)
    else:
        keep = None
    if not result.passed:
        return None
    where = " on the interior (the border reads past the input's edge)" if hypothesis.interior else ""
    where += " on the entries it wrote" if keep is not None else ""
    written = s.comparison.problem or (f"{number(s.comparison.max_rel)} off" if s.output.isfinite().all()
                                       else "off, with entries that are not finite")
    return (f"{hypothesis.text}: the output matches native with that change{where} (max rel error "
            f"{number(result.max_rel)}); as written it is {written}{evidence(s.comparison)}")


def matching_hypotheses(s, only: set | None = None, combined: bool = False) -> list[str]:
    """The mistakes whose native variant matches the candidate's output: every single one (those named in
    ``only``, by their text, if given), and with ``combined`` two at once where no single one does."""
    inputs = _inputs64(s.call)
    insane = unwritten(s)
    singles = hypotheses(s.call.op, inputs, s.call.options)
    tried = [h for h in singles if not h.pair_only]
    if only is not None:
        tried = [h for h in tried + pairs(singles) if h.text in only]
    found = [text for h in tried if (text := _compared(h, s, inputs, insane))]
    if not found and combined:
        found = [text for h in pairs(singles) if (text := _compared(h, s, inputs, insane))][:1]
    return found


def _ranges(indices: list[int]) -> str:
    parts, start = [], None
    for i, value in enumerate(indices):
        if start is None:
            start = value
        if i + 1 == len(indices) or indices[i + 1] != value + 1:
            parts.append(str(start) if start == value else f"{start}..{value}")
            start = None
    return ", ".join(parts)


def _region_values(s, bad: torch.Tensor) -> str:
    values = s.output[bad]
    scale = s.truth.exact.output.abs().max().item() or 1.0
    if (values == 0).all():
        return " (it holds 0 there)"
    shown = ", ".join(number(v) for v in values[:3].tolist())
    strange = (~values.isfinite()) | (values.abs() > 1e6 * scale) | ((values != 0) & (values.abs() < 1e-30))
    if strange.any():
        return f" (values such as {shown} there: memory never written, what torch.empty left?)"
    return f" (values such as {shown} there)"


def locus(s) -> str | None:
    """Where the wrong entries are, when they are confined to some indices of one axis."""
    bad = s.comparison.beyond
    if bad is None or not bad.any() or bad.all() or bad.dim() == 0:
        return None
    names = AXES.get(s.call.op, ())
    order = [1, 0, *range(2, bad.dim())] if bad.dim() > 1 else [0]
    for axis in order:
        size = bad.shape[axis]
        if size < 2:
            continue
        wrong = bad.transpose(0, axis).reshape(size, -1).any(1)
        if wrong.all():
            continue
        name = names[axis] if axis < len(names) else f"index of dim {axis}"
        bad_at = wrong.nonzero().flatten().tolist()
        good_at = (~wrong).nonzero().flatten().tolist()
        if good_at == [0]:
            text = f"only the first {name} is right: {name}s {_ranges(bad_at)} are wrong"
        elif bad_at == [size - 1]:
            text = f"the last {name} is wrong, the rest is right: a loop range that stops one short?"
        elif bad_at == [0]:
            text = f"the first {name} is wrong, the rest is right"
        elif good_at == list(range(len(good_at))):
            text = f"only the first {len(good_at)} {name}s are right: {name}s {_ranges(bad_at)} are wrong"
        else:
            text = f"wrong only at {name}s {_ranges(bad_at)}"
        return text + _region_values(s, bad) + evidence(s.comparison)
    return None


def mixed_samples(s) -> str | None:
    """Each output sample matched against every native sample: a mix-up of samples shows as a mapping."""
    truth, output = s.truth.exact.output, s.output
    if output.shape != truth.shape or output.dim() < 2 or output.shape[0] < 2:
        return None
    flat_truth, flat_output = truth.reshape(len(truth), -1), output.double().reshape(len(output), -1)
    nearest = torch.cdist(flat_output, flat_truth, p=float("inf")).argmin(1).tolist()  # the candidates to confirm
    mapping = [j if compare(truth[j], output[i], dtype=s.truth.dtype).passed else None for i, j in enumerate(nearest)]
    if None in mapping or mapping == list(range(len(mapping))):
        return None
    if set(mapping) == {0}:
        return "every output sample is the result for input sample 0: the loop over the batch does not index it"
    pairs = ", ".join(f"{i}<-{j}" for i, j in enumerate(mapping) if i != j)
    shown = pairs if len(pairs) < 120 else pairs[:120] + "..."
    return f"samples are mixed up: output sample i is native's result for input sample j ({shown})"


def worst_entries(s, count: int = 3) -> str:
    truth, output = s.truth.exact.output, s.output.double()
    if truth.shape != output.shape:
        return f"output shape {list(output.shape)}, expected {list(truth.shape)}"
    error = (output - truth).abs().nan_to_num(nan=float("inf")).reshape(-1)
    shown = []
    for flat in error.topk(min(count, error.numel())).indices.tolist():
        position = unravel(flat, truth.shape)
        shown.append(f"{at(position)}: {number(output[position].item())} where native gives "
                     f"{number(truth[position].item())}")
    return "; ".join(shown)


def value_diagnoses(s, known: set = frozenset(), search: bool = True, combined: bool = False,
                    mixing: bool = True) -> list[str]:
    """Why one call's output is wrong: the mistakes in ``known`` (found on other calls) first, then (if
    ``search``) every hypothesis (and with ``combined`` two at once), then where and how the entries are wrong
    (samples mixed up only if ``mixing``: two batch sizes ran)."""
    found = (known and matching_hypotheses(s, known)) or (search and matching_hypotheses(s, combined=combined))
    if found:
        return found
    if s.output.shape != s.truth.exact.output.shape:
        return []   # the batch-size and shape checks speak for it
    for explain in (mixed_samples, locus) if mixing else (locus,):
        text = explain(s)
        if text:
            return [text]
    return [f"no known cause fits: max rel error {number(s.comparison.max_rel)}; the worst entries of {s.call.label}: "
            f"{worst_entries(s)}"]


# ----------------------------------------------------------------------------- across calls


def difference(a: torch.Tensor, b: torch.Tensor) -> tuple[int, tuple] | None:
    """(entries that differ, (index, value in a, value in b) of the first), or None when equal (NaN equal to NaN)."""
    if a.shape != b.shape:
        return a.numel(), ((), f"shape {list(a.shape)}", f"shape {list(b.shape)}")
    if a.dtype == b.dtype and torch.equal(a, b):
        return None
    differ = a != b
    if a.is_floating_point() and b.is_floating_point():
        differ &= ~(a.isnan() & b.isnan())
    if not differ.any():
        return None
    index = tuple(int(i) for i in differ.nonzero()[0])
    return int(differ.sum()), (index, a[index].item(), b[index].item())


def changed_arguments(seen) -> list[tuple[str, int, tuple]]:
    """(input name, entries changed, (index, before, after) of the first) for each input the call changed."""
    after = (seen.record or {}).get("args_after") or {}
    changed = []
    for name, before in seen.call.inputs.items():
        if before is not None and after.get(name) is not None and name not in seen.call.updates:
            found = difference(before, after[name])
            if found:
                changed.append((name, *found))
    return changed


def twin_difference(seen, twin) -> tuple[int, tuple] | None:
    """How the outputs of two calls on the same input differ (see :func:`difference`)."""
    return difference(twin.output, seen.output)


def batch_sizes(seen) -> dict:
    """family -> batch size -> [(call, right)] of the plain calls that returned (or raised), by shapes."""
    found = {}
    for s in seen:
        if s.call.grad or s.record is None or s.call.op not in AXES or \
                s.call.case not in ("random", "negative", "mnist", "ties", "zeros", "table"):
            continue
        x = s.call.inputs.get("input")
        if x is None or x.dim() < 2:
            continue
        ok = not s.problem() and s.comparison.passed
        found.setdefault(s.call.family, {}).setdefault(s.call.n, []).append((s, ok))
    return found


def batch_size(seen) -> str | None:
    """Right at some batch sizes and wrong at others of the same shapes, or always the same number of output
    samples; None unless two batch sizes of one family ran."""
    return next(filter(None, (_batch_size(by_n) for by_n in batch_sizes(seen).values() if len(by_n) >= 2)), None)


def _batch_size(by_n: dict) -> str | None:
    right = sorted(n for n, results in by_n.items() if all(ok for _, ok in results))
    wrong = {n: next(s for s, ok in results if not ok) for n, results in by_n.items() if n not in right}
    if not wrong or len(by_n) < 2 or not all(s.problem() or s.output.shape != s.truth.exact.output.shape
                                             for s in wrong.values()):
        return None   # wrong values at the right shape: the values' own diagnoses say why
    out_sizes = {s.output.shape[0] for s in wrong.values() if not s.problem() and s.output.dim() > 0}
    shown = "; ".join(f"N={n}: {s.problem() or f'output shape {list(s.output.shape)}'}"
                      for n, s in sorted(wrong.items()))
    if len(out_sizes) == 1 and not any(s.problem() for s in wrong.values()):
        size = out_sizes.pop()
        if all(size != n for n in wrong):
            return f"the output has {size} samples whatever the input's batch size: the batch size is hard-coded " \
                   f"to {size}? ({shown})"
    if right:
        return f"right at N={', '.join(map(str, right))} but not at {shown}: the batch size is hard-coded?"
    return None


def changed_inputs(seen) -> list[str]:
    for s in seen:
        if s.problem():
            continue
        for name, count, (position, before, after) in changed_arguments(s):
            return [f"argument '{name}' is changed by the call ({count} entries; first {at(position)}: {number(before)} "
                    f"before, {number(after)} after): the function works in place on its input (a[a < 0] = 0, relu_(), "
                    f"+= ...), which corrupts the caller's tensor"]
    return []


def unrepeatable(seen) -> list[str]:
    by_label = {s.call.label: s for s in seen}
    for s in seen:
        twin = by_label.get(s.call.twin) if s.call.twin else None
        if twin is None or s.problem() or twin.problem():
            continue
        difference = twin_difference(s, twin)
        if difference:
            count, (position, first, second) = difference
            return [f"two calls on the same input differ in {count} entries (first {at(position)}: {number(first)}, then "
                    f"{number(second)}): the output holds memory it never wrote (torch.empty partly filled) or depends "
                    f"on randomness"]
    return []


def dtype_device(seen) -> list[str]:
    found = []
    for s in seen:
        if s.problem() or "dtype" not in s.info or "device" not in s.info:
            continue
        if s.info["dtype"] != str(s.truth.dtype):
            found.append(f"returns {s.info['dtype']} for {s.truth.dtype} inputs (a numpy round trip, or an output "
                         f"made with another dtype, e.g. torch.zeros(..., dtype=torch.float64)?)")
        expected = "cuda" if s.call.case == "cuda" else "cpu"
        if not s.info["device"].startswith(expected):
            found.append(f"returns a tensor on {s.info['device']} for inputs on {expected}: the device is not "
                         f"honoured")
        if found:
            return found
    return found


# ----------------------------------------------------------------------------- gradients


def gradient_findings(seen) -> list[str]:
    """A cut graph, an error in backward and a wrong gradient: three different findings."""
    found = []
    for s in seen:
        if not s.call.grad:
            continue
        if s.error:
            plain = next((o for o in seen if not o.call.grad and o.call.inputs is s.call.inputs), None)
            if plain is not None and not plain.problem():
                found.append(f"with inputs that require grad the call raises {s.error['type']}: "
                             f"{first_line(s.error['message'])}{where(s.error['traceback'])}; without, it runs (an "
                             f"in-place change of an input is not allowed on a leaf that requires grad)")
            continue
        if s.problem():
            continue
        if not s.info.get("requires_grad"):
            found.append("autograd graph cut: with inputs that require grad the output does not require grad (it is "
                         "built from .data, .detach(), .numpy() or .item() values, or filled under torch.no_grad()): "
                         "no gradient reaches the weights, so training cannot learn")
        elif s.info.get("is_leaf"):
            found.append("autograd graph cut: the output is a new leaf tensor that was given requires_grad_(): it "
                         "looks differentiable, but no gradient reaches the inputs")
        elif (s.record.get("backward") or {}).get("error"):
            error = s.record["backward"]["error"]
            found.append(f"backward raises {error['type']}: {first_line(error['message'])}{where(error['traceback'])}: "
                         f"the forward pass works, differentiating it does not")
        elif (s.record.get("backward") or {}).get("ran"):
            missing = [name for name, grad in s.record["grads"].items() if grad is None]
            unused = [name for name in missing if never_used(s, name)]
            found += [f"'{name}' is never used: the output does not depend on it at all (it is the same with "
                      f"'{name}' left out), so no gradient reaches it" + (" (the bias is missing, see above)"
                                                                           if name == "bias" else "")
                      for name in unused]
            cut = [name for name in missing if name not in unused]
            if cut:
                found.append(f"autograd graph cut for {', '.join(repr(m) for m in cut)}: no gradient reaches "
                             f"{'it' if len(cut) == 1 else 'them'} though the output depends on "
                             f"{'it' if len(cut) == 1 else 'them'} (its .data, .detach() or a copy is used?), "
                             f"while the other inputs get theirs")
            found += wrong_gradients(s)
    return _merged(found)


def never_used(s, name: str) -> bool:
    """Whether the call's output is native's with input ``name`` left out (None, or zeros where it is required):
    the output does not depend on it."""
    inputs = _inputs64(s.call)
    inputs[name] = None if name == "bias" else torch.zeros_like(inputs[name])
    try:
        predicted = native_call(s.call.op, inputs, s.call.options)
    except (RuntimeError, ValueError, TypeError):
        return False
    return compare(predicted, s.output, dtype=s.truth.dtype).passed


def _merged(found: list[str]) -> list[str]:
    """One finding per cause: the first one's evidence (the text up to ' (' names the cause)."""
    kept = {}
    for text in found:
        kept.setdefault(text.split(" (")[0], text)
    return list(kept.values())


def wrong_gradients(s) -> list[str]:
    """Gradients that are wrong although the call's forward values are right (else the forward is to blame)."""
    if not s.comparison.passed:                           # a wrong shape is a comparison problem too
        return []
    found = []
    for name, result in s.gradient_comparisons.items():
        grad, truth = s.gradient(name), s.truth.exact.grads[name]
        if result.passed or kink_note(s, name, grad):
            continue
        cause = ""
        if compare(-truth, grad, dtype=s.truth.dtype).passed:
            cause = ": its sign is flipped"
        elif grad.shape == truth.shape and truth.abs().max() > 0:
            scale = (grad.double() * truth).sum().item() / (truth * truth).sum().item()
            if abs(scale - 1) > 1e-3 and compare(truth * scale, grad, dtype=s.truth.dtype).passed:
                cause = f": it is native's times {number(scale)}"
        found.append(f"the gradient w.r.t. '{name}' is wrong{cause} (max rel error {number(result.max_rel)}"
                     f"{evidence(result)}), although the forward values are right")
    return found


# ----------------------------------------------------------------------------- all of them


def import_error_text(error: dict) -> str:
    """Importing the module failed: what to change first when it is code for older Python or NumPy (see drift)."""
    return drift.import_text(error)


def native_ops(function, seen) -> list[str]:
    """The native ops a function ran that it is meant to compute itself (see :mod:`.scratch`)."""
    found = []
    for rule in scratch.rules(function):
        names = scratch.native_names(rule, seen)
        if names:
            found.append(scratch.finding(rule, names))
    return found


def overflows(s) -> bool:
    """Whether a likely mistake gives the candidate's non-finite values itself (an overflow, not memory never
    written): a hypothesis whose prediction is not finite and matches the whole output."""
    inputs = _inputs64(s.call)
    for hypothesis in hypotheses(s.call.op, inputs, s.call.options):
        try:
            predicted = hypothesis.predict(dict(inputs), dict(s.call.options))
        except (RuntimeError, ValueError, IndexError, TypeError, NotImplementedError):
            continue
        if predicted is not None and not predicted.isfinite().all() and _compared(hypothesis, s, inputs, None):
            return True
    return False


def uninitialised(seen) -> list[str]:
    """NaN or huge values in an output for finite inputs: memory it never wrote, whatever else is wrong (unless
    a likely mistake computes them: an overflow)."""
    for s in seen:
        if s.problem() or s.call.grad:
            continue
        insane = unwritten(s)
        if insane is not None and not overflows(s):
            position = tuple(int(i) for i in insane.nonzero()[0])
            return [f"the output holds {int(insane.sum())} NaN or huge values for finite inputs (first {at(position)}: "
                    f"{number(s.output[position].item())}, at {s.call.label}): memory it never wrote, as torch.empty "
                    f"leaves it (the checker fills new memory with NaN), so some entries are never assigned"]
    return []


def _stopped(seen, result) -> list[str]:
    """Why a function's calls ended early: its first call did not return, or the process crashed in one."""
    if result.ended == "timeout":
        printed = [line.strip() for line in result.output.splitlines() if line.strip()]
        last = f"; the last line it printed: {printed[-1][:200]!r}" if printed else "; it printed nothing"
        return [f"timeout: {result.reason}; nothing it did was judged{last}"]
    if result.ended == "crashed":
        crashed = next((s.call.label for s in seen if s.fate.state == "crashed"), None)
        return [f"crashed{f' at {crashed}' if crashed else ''}: {result.reason}"]
    return []


def diagnoses(function, seen, result) -> list[str]:
    """Every finding for one function from the calls that ran (``seen``) and how its schedule ended (``result``),
    most telling first, without repeats."""
    found = _stopped(seen, result)
    if result.import_error is not None:
        return found + [import_error_text(result.import_error)]
    returned = [s for s in seen if s.record is not None and not s.error]
    if returned and all(s.info.get("type") == "NoneType" for s in returned):
        found.append("returns None: the body is still `pass`, or it computes a result without returning it")
    errors = {}
    for s in seen:
        if s.error and not s.call.grad:
            key = f"raises {error_text(s.error)}{where(s.error['traceback'])}"
            errors.setdefault(key, []).append(s.call.label)
    found += [f"{key} (at {', '.join(labels[:4])}{' ...' if len(labels) > 4 else ''})" for key, labels in errors.items()]
    found += filter(None, [batch_size(seen)])
    found += dtype_device(seen)
    found += uninitialised(seen)
    explained = {}
    wrong = [s for s in seen if not (s.call.grad or s.call.case in ("repeat", "speed") or s.problem()
                                     or s.comparison.passed)]
    mixing = len({n for by_n in batch_sizes(seen).values() for n in by_n}) >= 2
    # The cheapest calls first, every hypothesis on the first two (pairs of them on the first); the others try
    # what those found.
    for rank, s in enumerate(sorted(wrong, key=lambda s: s.output.numel())):
        for text in value_diagnoses(s, set(explained), search=rank < 2, combined=rank == 0, mixing=mixing):
            explained.setdefault(text.split(":")[0], (text, []))[1].append(s.call.label)
    found += [f"{text} [{', '.join(labels[:4])}{' ...' if len(labels) > 4 else ''}]"
              for text, labels in explained.values()]
    found += changed_inputs(seen)
    found += unrepeatable(seen)
    found += gradient_findings(seen)
    found += native_ops(function, seen)
    return list(dict.fromkeys(found))

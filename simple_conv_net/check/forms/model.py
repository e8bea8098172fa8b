"""The model form: a module defining an ``nn.Module`` class, checked against the architecture the form declares.

Seed 001 (COM S 573 homework 5, question 4a) has students write ``class LeNet(nn.Module)`` in
``solution.py``: on [N, 3, 32, 32], convolution 6 5x5, max pooling, convolution 16 5x5, max pooling,
flatten, linear 120, 84 and n_classes, ReLU after both convolutions and the first two linear
layers; 62,006 parameters for ten classes (:func:`.architecture.lenet5`). The class is ``LeNet``
unless ``--model-class NAME`` says otherwise (:func:`use_class`).

Two calls, each in the child (:func:`.model_trace.run_model_call`): ``check`` builds the class with
the handout's constructor arguments (``LeNet(n_classes=10)``) and traces its forward on a batch of
four seeded images; ``train`` runs a few SGD steps on generated images in CIFAR-10's shape (CIFAR-10
is not bundled: the smoke test says so). The judging is :mod:`.model_judge`, the reference this
project's ``simple_conv_net.model.LeNet5`` with the candidate's weights copied in. Rubric
``lenet-hw5``.
"""

from __future__ import annotations

from .base import Form, Function
from .ops import Op

MODEL_CLASS = "LeNet"
N_CLASSES = 10
BATCH = 4
TRAIN = {"samples": 512, "batch": 32, "steps": 40, "lr": 0.02}


def _judged_elsewhere(input, **options):
    """The model's oracle is the reference network with the candidate's weights (model_judge), not one op."""
    raise NotImplementedError("judged by model_judge")


OPS = {"model.lenet5": Op(("input",), (), _judged_elsewhere)}


def _reference(n_classes: int):
    from ...model import LeNet5
    return LeNet5("torch", (3, 32, 32), n_classes)


def plan(function: Function, settings, material, found: dict | None, style) -> tuple[list, str | None]:
    import torch

    from .. import plans
    x = torch.randn(BATCH, 3, 32, 32, generator=torch.Generator().manual_seed(settings.seed))
    common = {"seed": settings.seed, "constructor": {"n_classes": N_CLASSES}}
    calls = [plans.Call("check: construct, trace the forward on [4, 3, 32, 32]", "assignment", function.op,
                        {"input": x}, dict(common, stage="check"))]
    if settings.train_steps:
        steps = min(settings.train_steps, TRAIN["steps"])
        calls.append(plans.Call(f"train: {steps} SGD steps on generated CIFAR-shaped images", "training", function.op,
                                {"input": x[:1]}, {**common, **TRAIN, "stage": "train", "steps": steps}, stage="sizes"))
    return plans.finish(calls), None


def run_call(module, name: str, request: dict) -> dict:
    import time

    from .model_trace import run_model_call
    started = time.perf_counter()
    record = run_model_call(module, name, request)
    record.update(seconds=[time.perf_counter() - started], native_seconds=[])
    record.setdefault("error", None)
    return record


def analyse(function: Function, calls: list, result, settings):
    from .. import analysis
    from . import model_judge
    from .architecture import lenet5
    from .verdict import function_result
    try:
        seen = analysis.seen_calls(calls, result)
        verdict = model_judge.ModelVerdict()
        for s in seen:
            if not (s.fate.judged and s.record is not None):
                continue
            if s.call.options["stage"] == "check":
                declaration = lenet5(N_CLASSES)
                record = dict(s.record)
                if record.get("error") is None:
                    record.pop("error")
                if model_judge.judge_structure(record, declaration, N_CLASSES, BATCH, verdict):
                    model_judge.judge_function(record, s.call.inputs["input"], declaration, _reference, N_CLASSES,
                                               verdict)
            elif verdict.facts.get("constructs", True):
                record = {k: v for k, v in s.record.items() if not (k == "error" and v is None)}
                model_judge.judge_training(record, verdict)
        checks = [analysis.Check(*check) for check in verdict.checks]
        status = analysis.status_of(checks, [s for s in seen if s.fate.judged], result.ended)
        if verdict.facts.get("constructs") is False:
            status = "error"
        return function_result(function.name, status, checks, verdict.diagnoses,
                               verdict.notes + [summary(verdict.facts)], seen, result)
    except Exception as error:  # noqa: BLE001 - a bug of the checker's: this function is not graded, and says so
        return analysis.checker_failure(function.name, error)


def summary(facts: dict) -> str:
    """The model's facts in one line (the fields of parity_tests/check_corpus/lenet_model/MANIFEST.json)."""
    if not facts.get("constructs"):
        return f"constructs: no ({facts.get('error')})"
    equal = {True: "yes", False: "no", None: "cannot copy its parameters (its layers differ)"}
    return (f"constructs: yes; output shape: {facts.get('output_shape')}; parameters: {facts.get('parameters', 0):,}; "
            f"equal to the reference: {equal[facts.get('equal_to_reference')]}; first difference: "
            f"{facts.get('first_difference') or '-'}; APIs outside torch.nn: "
            f"{', '.join(facts.get('apis_outside_nn') or []) or '-'}")


def default_rubric(report: dict):
    """lenet-hw5, its items on the class the report checked (--model-class)."""
    from dataclasses import replace

    from ..rubric import load
    rubric = load("lenet-hw5")
    name = next(iter(report["functions"]), MODEL_CLASS)
    return replace(rubric, items=tuple(replace(item, functions=tuple(name if f == MODEL_CLASS else f
                                                                     for f in item.functions))
                                       for item in rubric.items))


def for_class(name: str) -> Form:
    """The model form checking the class ``name`` (its report entry and rubric function are that name)."""
    function = Function(name, "model.lenet5", ("n_classes",))
    return Form("model", "a module defining an nn.Module class (seed 001's class LeNet in solution.py), checked "
                         "against the architecture the form declares (seed 001's LeNet)",
                {name: function}, plan, default_rubric, run_call=run_call, analyse=analyse, ops=OPS)


FORM = for_class(MODEL_CLASS)


def use_class(name: str) -> Form:
    """--model-class NAME: the registered model form checks the class NAME from now on (in this process; the child
    needs no telling, as it calls the name it is given)."""
    from . import FORMS
    FORMS["model"] = for_class(name)
    return FORMS["model"]

"""Judge a candidate model against its declaration and the reference network (the model form, in the parent).

From the child's records (:func:`.model_trace.run_model_call`): whether the class constructs with
the handout's arguments, its output's shape, its parameters against the declaration's count, its
layers as its forward ran them against the declared ones (:mod:`.architecture`), the APIs its own
code called, and its function: the weights of its convolutions and linear layers, in the order
its forward used them, copied into this project's LeNet-5 (native PyTorch, float64), whose every
layer's output is then looked for among the candidate's; the first declared layer not reproduced
is where the two part (``output`` when every layer matches but the model returns something else).
Last, whether a short training on generated data lowers the loss.

``facts`` holds what parity_tests/check_corpus/lenet_model/MANIFEST.json calls each fixture's
fields: constructs, output_shape, parameters, equal_to_reference, first_difference,
apis_outside_nn, layers.
"""

from __future__ import annotations

import torch

from ...compare import compare
from .architecture import layer_differences, total_parameters

LEARNS = 0.5        # the training smoke passes when its last losses average under this share of its first ones


class ModelVerdict:
    def __init__(self) -> None:
        self.checks: list[tuple[str, bool, str]] = []
        self.diagnoses: list[str] = []
        self.notes: list[str] = []
        self.facts: dict = {}

    def check(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append((name, passed, detail))


def _error_line(error: dict) -> str:
    return f"{error['type']}: {str(error['message']).splitlines()[0] if error['message'] else ''}"


def _reference(declaration_reference, n_classes: int, weights: list) -> torch.nn.Module:
    model = declaration_reference(n_classes).to(torch.float64)
    with torch.no_grad():
        for parameter, value in zip(model.parameters(), weights):
            parameter.copy_(value.to(torch.float64))
    return model


def _weights(events: list[dict], declaration) -> list | None:
    """The candidate's weights and biases in the declaration's order, or None when their layers or shapes differ."""
    used = [e for e in events if e["kind"] in ("conv", "linear") and "weight" in e]
    declared = [d for d in declaration if d.kind in ("conv", "linear")]
    if len(used) != len(declared) or any("bias" not in e for e in used):
        return None
    weights = []
    for event, layer in zip(used, declared):
        if event["weight"].numel() + event["bias"].numel() != layer.parameters or event.get("width") != layer.width:
            return None
        weights += [event["weight"], event["bias"]]
    return weights


def judge_structure(record: dict, declaration, n_classes: int, batch: int, verdict: ModelVerdict) -> bool:
    """Construction, output shape, parameters, layers, APIs; False when the model could not be built or run."""
    facts = verdict.facts
    if "error" in record and "parameters" not in record:
        facts.update(constructs=False, error=record["error"]["type"])
        verdict.check("constructs", False, _error_line(record["error"]))
        verdict.diagnoses.append(f"does not construct with the handout's arguments: {_error_line(record['error'])}")
        return False
    facts["constructs"] = True
    verdict.check("constructs", True, "built with the handout's arguments")
    count = sum(p[2] for p in record["parameters"])
    wanted = total_parameters(declaration)
    facts["parameters"] = count
    verdict.check("parameters", count == wanted, f"{count:,} parameters, declared {wanted:,}")
    if "error" in record:
        verdict.check("values", False, f"its forward raised {_error_line(record['error'])}")
        verdict.diagnoses.append(f"the forward raises {_error_line(record['error'])}")
        return False
    shape = record.get("output_info", {}).get("shape")
    facts["output_shape"] = shape
    returned = record.get("output_info", {}).get("type", "nothing")
    verdict.check("returns", shape is not None, "a tensor" if shape is not None else f"returned {returned}")
    if shape is None:
        verdict.diagnoses.append(f"the forward returns {returned}, not the logits: not implemented yet? (lenet-hw5 "
                                 f"gives nothing for the architecture or the APIs of a forward that returns no tensor)")
    verdict.check("shape", shape == [batch, n_classes], f"output {shape}, expected {[batch, n_classes]}")
    differences, first = layer_differences(declaration, record["events"])
    facts["layers"] = differences
    facts["architecture_first_difference"] = first
    verdict.check("layers", not differences, "as declared" if not differences else
                  "; ".join(f"{name}: {text}" for name, text in differences.items()))
    if differences and not record["events"]:
        verdict.diagnoses.append(f"its forward runs no layer: every declared layer is missing ({', '.join(differences)})")
    else:
        verdict.diagnoses += [f"layer {name}: {text}" for name, text in differences.items()]
    apis = record["apis"]
    facts["apis_outside_nn"], facts["apis_functional"] = apis["outside_nn"], apis["functional"]
    facts["tensor_methods"] = apis["tensor_methods"]
    outside = f"its forward calls {', '.join(apis['outside_nn'])}: outside torch.nn, which the handout does not allow"
    verdict.check("api", not apis["outside_nn"], outside if apis["outside_nn"] else "torch.nn only")
    if apis["outside_nn"]:
        verdict.diagnoses.append(outside)
    if apis["functional"] or apis["tensor_methods"]:
        verdict.notes.append("the forward's own calls: " + ", ".join(apis["functional"] + [
            f"Tensor.{m}" for m in apis["tensor_methods"]]) + " (torch.nn.functional is inside torch.nn)")
    return True


def judge_function(record: dict, x: torch.Tensor, declaration, reference, n_classes: int,
                   verdict: ModelVerdict) -> None:
    """Its weights copied into the reference network: the first declared layer whose output it does not reproduce."""
    facts = verdict.facts
    weights = _weights(record["events"], declaration)
    if weights is None:
        facts.update(equal_to_reference=None, first_difference=facts.get("architecture_first_difference"))
        verdict.check("values", False, "its parameters cannot be copied into the reference network (its layers "
                                       "differ from the declaration's)")
        return
    truth = _reference(reference, n_classes, weights)
    with torch.no_grad():
        _, intermediates = truth(x.to(torch.float64), return_intermediates=True)
    outputs = [e["output"] for e in record["events"] if isinstance(e.get("output"), torch.Tensor)]
    first = None
    for layer in declaration:
        expected = intermediates[layer.name]
        if not any(o.shape == expected.shape and compare(expected, o, dtype=torch.float32).passed for o in outputs):
            first = layer.name
            break
    final = record.get("output")
    logits = intermediates[declaration[-1].name]
    if first is None and not (final is not None and final.shape == logits.shape and
                              compare(logits, final, dtype=torch.float32).passed):
        first = "output"
    facts.update(equal_to_reference=first is None, first_difference=first)
    verdict.check("values", first is None, "equal to the reference network's logits with its parameters copied in"
                  if first is None else f"parts from the reference network at {first}")
    if first == "output":
        verdict.diagnoses.append("every layer matches, but it returns something other than the logits of the last "
                                 "layer (the trainer's nn.CrossEntropyLoss expects logits)")
    elif first is not None:
        verdict.diagnoses.append(f"its outputs part from the reference's at {first} "
                                 f"({next(d.text for d in declaration if d.name == first)})")


def judge_training(record: dict, verdict: ModelVerdict) -> None:
    if "error" in record:
        verdict.check("train", False, f"raised {_error_line(record['error'])}")
        return
    losses = record.get("losses") or []
    if len(losses) < 10:
        verdict.check("train", False, f"{len(losses)} steps ran")
        return
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    learns = last == last and last < LEARNS * first
    verdict.check("train", learns, f"{len(losses)} SGD steps on generated CIFAR-shaped images (not CIFAR-10): "
                                   f"loss {first:.3f} -> {last:.3f}")
    if not learns:
        verdict.diagnoses.append(f"does not learn the generated images in {len(losses)} steps (loss {first:.3f} -> "
                                 f"{last:.3f})")

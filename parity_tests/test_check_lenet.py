"""The lenet-dict and model forms against their corpora: every fixture gets what its MANIFEST.json says a correct
checker must find (parity_tests/check_corpus/lenet_dict/ and lenet_model/).

Most fixtures run in this process, through each form's own plan, child-side calls and judging (the sandbox is the
same for every form and tested elsewhere); a few go through the whole checker, children and all, and its outputs.
A bug fixture's functions other than those its manifest names are the good base's, so only those are run here
(the good fixtures run every function); the full sweep of every function of every fixture is marked slow.
"""

import importlib
import json
import shutil
import sys
from pathlib import Path

import pytest

from simple_conv_net.check import grade, plans, schedule
from simple_conv_net.check.forms import FORMS, lenet_dict
from simple_conv_net.check.forms.model import summary
from simple_conv_net.check.report import function_entry, rescore
from simple_conv_net.check.targets import resolve

HERE = Path(__file__).parent / "check_corpus"
sys.path.insert(0, str(HERE))
from corpora import compose, manifest  # noqa: E402

sys.path.remove(str(HERE))

SETTINGS = plans.Settings(train_steps=0)
STRICT = plans.Settings(train_steps=0, strict=True)    # --strict: the general cases decide too
LENET = manifest("lenet_dict")
MODEL = manifest("lenet_model")
QUICK_LENET = ("cmu10601_good", "cmu10601_starter", "cmu10601_pooling_forward_chw_layout",
               "cmu10601_sgd_rates_swapped", "cmu10601_py2_true_division", "sfu_port_good", "sfu_port_starter",
               "sfu_port_conv_forward_chw_layout", "sfu_port_relu_backward_wrong_sign")


def _import(target: Path):
    """The submission as the child imports it: cnn_lenet.py, or the port's folder through its gathering module."""
    if target.is_file():
        spec = importlib.util.spec_from_file_location(f"lenet_fixture_{target.parent.name}", target)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    located = lenet_dict.locate(target)
    work = target.parent / f"{target.name}-work"
    located.copy_into(work)
    names = [n.removesuffix(".py") for n in lenet_dict.PORT_FILES] + [lenet_dict.PORT_MODULE]
    for name in names:
        sys.modules.pop(name, None)
    sys.path.insert(0, str(work))
    try:
        return importlib.import_module(lenet_dict.PORT_MODULE)
    finally:
        sys.path.remove(str(work))
        for name in names[:-1]:
            sys.modules.pop(name, None)


def run_form(module, form_name: str, name: str, settings=SETTINGS):
    """One function through its form's plan, calls (here, not in a child) and judging."""
    form = FORMS[form_name]
    function = form[name]
    calls, why = form.plan(function, settings, lambda: None, None, None)
    assert why is None
    result = schedule.Schedule(calls, grade.Options().budget).run(
        schedule.in_process(lambda call: form.run_call(module, name, call.request())))
    return form.analyse(function, calls, result, settings)


def findings(entry) -> dict:
    """{case: [codes]} from a result's 'finding CASE: CODES' notes (see lenet_judge)."""
    found = {}
    for note in entry.notes:
        if note.startswith("finding "):
            case, codes = note.removeprefix("finding ").split(": ", 1)
            found[case] = codes.split(", ")
    return found


def first_case(found: dict, code: str) -> str | None:
    return next((case for case, codes in found.items() if code in codes), None)


def _expected_cases(expect: dict) -> dict:
    cases = expect["cases"]
    return cases if isinstance(cases, dict) else dict.fromkeys(expect["outputs"], cases)


def check_lenet_fixture(name: str, tmp_path, every_function: bool) -> None:
    entry = LENET["fixtures"][name]
    target = compose("lenet_dict", name, tmp_path)
    module = _import(target)
    names = [n for n in FORMS["lenet-dict"] if hasattr(module, n)]
    assert len(names) == len(FORMS["lenet-dict"]), names        # each variant defines every name, given or not
    wanted = names if every_function or entry["kind"] in ("good", "starter") else list(entry["expect"])
    results = {}
    for function in wanted:
        result = results[function] = run_form(module, "lenet-dict", function)
        expect = entry["expect"].get(function)
        found = findings(result)
        if expect is None:
            assert result.status == "pass", (name, function, result.status, found, result.diagnoses)
            continue
        cases = _expected_cases(expect)
        for code, case in cases.items():
            assert first_case(found, code) == case, (name, function, code, found)
        if set(cases.values()) == {"general"}:      # reported, and failing only with --strict
            assert result.status == "pass", (name, function)
            assert any(note.startswith("reported (general cases): ") for note in result.notes), result.notes
            assert run_form(module, "lenet-dict", function, STRICT).status == "fail"
            continue
        assert result.status != "pass", (name, function)
        if expect.get("says") and entry["kind"] not in ("starter",):
            assert result.diagnoses, (name, function)
    if entry["kind"] in ("good", "starter"):       # the form's default rubric (cmu-hw7 for 10-601): full, or 0
        report = {"form": "lenet-dict", "functions": {n: function_entry(r) for n, r in results.items()}}
        scored = rescore(report, FORMS["lenet-dict"].default_rubric(report))
        assert scored["score"] == (scored["max_score"] if entry["kind"] == "good" else 0), (name, scored["rubric"])
        assert scored["rubric"]["rubric"] == ("cmu-hw7" if name.startswith("cmu10601") else "functions")


@pytest.mark.parametrize("name", QUICK_LENET)
def test_lenet_dict_fixture(name, tmp_path):
    check_lenet_fixture(name, tmp_path, every_function=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, e in LENET["fixtures"].items() if "file" not in e])
def test_lenet_dict_fixture_every_function(name, tmp_path):
    check_lenet_fixture(name, tmp_path, every_function=True)


def test_diagnoses_name_the_mistake(tmp_path):
    """The words a student reads: the layout named, the sgd convention, the Python 2 division."""
    said = {}
    for fixture, function in (("cmu10601_pooling_forward_chw_layout", "pooling_layer_forward"),
                              ("cmu10601_sgd_rates_swapped", "sgd_momentum"),
                              ("cmu10601_sgd_momentum_after_step", "sgd_momentum"),
                              ("cmu10601_py2_true_division", "pooling_layer_forward"),
                              ("cmu10601_inner_product_dw_transposed", "inner_product_backward")):
        said[fixture] = " ".join(run_form(_import(compose("lenet_dict", fixture, tmp_path)), "lenet-dict",
                                          function).diagnoses)
    assert "C order of (channel, height, width), the width fastest (chw-C)" in said["cmu10601_pooling_forward_chw_layout"]
    assert "scrambled" in said["cmu10601_pooling_forward_chw_layout"]
    assert "learning rates swapped" in said["cmu10601_sgd_rates_swapped"]
    assert "momentum applied after the step" in said["cmu10601_sgd_momentum_after_step"]
    assert "use //" in said["cmu10601_py2_true_division"]
    assert "transposed" in said["cmu10601_inner_product_dw_transposed"]


def _model_result(name: str, tmp_path, settings=SETTINGS):
    target = compose("lenet_model", name, tmp_path)
    spec = importlib.util.spec_from_file_location(f"lenet_model_{name}", target)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return run_form(module, "model", "LeNet", settings)


@pytest.mark.parametrize("name", list(MODEL["fixtures"]))
def test_model_fixture(name, tmp_path):
    """Each fixture's manifest fields, as the summary note states them, and its layers named in the diagnoses."""
    expect = MODEL["fixtures"][name]["expect"]
    result = _model_result(name, tmp_path)
    line = next(note for note in result.notes if note.startswith("constructs: "))
    if not expect["constructs"]:
        assert line == f"constructs: no ({expect['error']})" and result.status == "error"
        return
    equal = {True: "yes", False: "no", None: "cannot copy its parameters (its layers differ)"}
    assert line == summary({**expect, "constructs": True}) or all(part in line for part in (
        f"parameters: {expect['parameters']:,}", f"equal to the reference: {equal[expect['equal_to_reference']]}",
        f"first difference: {expect['first_difference'] or '-'}", f"output shape: {expect['output_shape']}"))
    assert f"APIs outside torch.nn: {', '.join(expect['apis_outside_nn']) or '-'}" in line
    if expect["apis_outside_nn"]:
        assert f"its forward calls {', '.join(expect['apis_outside_nn'])}: outside torch.nn" in result.diagnoses[-1]
    for layer, text in expect.get("layers", {}).items():
        assert any(d.startswith(f"layer {layer}: {text}") for d in result.diagnoses), (layer, result.diagnoses)
    kind = MODEL["fixtures"][name]["kind"]
    assert (result.status == "pass") == (kind in ("good", "variant")), (result.status, result.checks)
    if kind in ("good", "starter"):     # lenet-hw5: every item in full but the training (not run here), or 0
        report = {"form": "model", "functions": {"LeNet": function_entry(result)}}
        items = rescore(report, FORMS["model"].default_rubric(report))["rubric"]["items"]
        assert [i["score"] for i in items] == ([10, 10, 2, 0] if kind == "good" else [0, 0, 0, 0]), items


def test_model_missing_relu_is_named(tmp_path):
    result = _model_result("missing_relu", tmp_path)
    assert "layer relu4: missing: no ReLU (after fc2)" in result.diagnoses


@pytest.mark.slow
def test_model_training_smoke_separates_good_from_softmax(tmp_path):
    settings = plans.Settings(train_steps=40)
    good, softmax = (_model_result(n, tmp_path, settings) for n in ("good", "softmax_output"))
    assert [c.passed for c in good.checks if c.name.startswith("train")] == [True]
    assert [c.passed for c in softmax.checks if c.name.startswith("train")] == [False]


# ----------------------------------------------------------------------------- the whole checker


@pytest.mark.slow
def test_checker_grades_the_10601_starter_zero_and_the_good_file_in_full(tmp_path):
    """Through the children and the rubric: cmu-hw7 gives the good file 73 of 73 and the starter 0 (a minute on 2
    cores: slow; test_lenet_dict_fixture scores both in process)."""
    options = grade.Options(SETTINGS, jobs=2)
    good = grade.check(resolve(str(compose("lenet_dict", "cmu10601_good", tmp_path))), options)
    starter = grade.check(resolve(str(compose("lenet_dict", "cmu10601_starter", tmp_path))), options)
    assert good["form"] == starter["form"] == "lenet-dict"
    assert good["rubric"]["rubric"] == "cmu-hw7" and (good["score"], good["max_score"]) == (73, 73)
    assert starter["score"] == 0
    assert all(entry["status"] == "pass" for entry in good["functions"].values())


def test_checker_takes_the_ports_folder(tmp_path):
    target = resolve(str(compose("lenet_dict", "sfu_port_starter", tmp_path)))
    report = grade.check(target, grade.Options(SETTINGS, jobs=2))
    assert report["form"] == "lenet-dict" and report["score"] == 0
    assert report["functions"]["sgd_momentum"]["status"] == "pass"      # given in the port
    assert report["functions"]["conv_layer_forward"]["status"] == "fail"


@pytest.mark.parametrize("name, words", [("cmu10601_py2_print_statement", "Missing parentheses in call to 'print'"),
                                         ("cmu10601_py2_mixed_tabs", "TabError: inconsistent use of tabs and spaces"),
                                         ("cmu10601_missing_module_scipy", "No module named 'scipy'")])
def test_checker_names_files_that_cannot_run_under_python3(name, words, tmp_path):
    """The manifest's whole-file fixtures: one line naming the Python 2 (or missing-module) cause, no score."""
    assert LENET["fixtures"][name]["file"]
    report = grade.check(resolve(str(compose("lenet_dict", name, tmp_path))),
                         grade.Options(SETTINGS, form="lenet-dict", jobs=2, only=("pooling_layer_forward",)))
    entry = report["functions"]["pooling_layer_forward"]
    assert entry["status"] == "error" and len(entry["diagnoses"]) == 1 and words in entry["diagnoses"][0]
    assert report["score"] == 0


def test_checker_model_form_json_and_rubric(tmp_path):
    target = resolve(str(compose("lenet_model", "average_pooling", tmp_path)))
    report = grade.check(target, grade.Options(SETTINGS, jobs=1))
    assert report["form"] == "model" and report["rubric"]["rubric"] == "lenet-hw5"
    entry = report["functions"]["LeNet"]
    assert entry["status"] == "fail" and "layer pool: AvgPool2d(2, 2), declared MaxPool2d(2, 2)" in entry["diagnoses"]
    json.dumps(report)
    shutil.rmtree(tmp_path)


def test_model_class_option_checks_and_scores_another_class(tmp_path):
    """--model-class MyNet: the form checks MyNet, and lenet-hw5's items score it."""
    from simple_conv_net.check import cli
    from simple_conv_net.check.forms import model
    source = compose("lenet_model", "good", tmp_path).read_text().replace("class LeNet(", "class MyNet(")
    (tmp_path / "renamed.py").write_text(source)
    spec = importlib.util.spec_from_file_location("lenet_model_renamed", tmp_path / "renamed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        args = cli.parse_args(["renamed.py", "--model-class", "MyNet", "--only", "MyNet"])
        assert args.model_class == "MyNet" and list(FORMS["model"]) == ["MyNet"]
        result = run_form(module, "model", "MyNet")
        assert result.status == "pass"
        report = {"form": "model", "functions": {"MyNet": function_entry(result)}}
        items = rescore(report, FORMS["model"].default_rubric(report))["rubric"]["items"]
        assert [i["score"] for i in items] == [10, 10, 2, 0]
    finally:
        model.use_class(model.MODEL_CLASS)

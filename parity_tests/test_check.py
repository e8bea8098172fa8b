"""python -m simple_conv_net.check: diagnoses on a corpus of broken submissions, grading, outputs.

The corpus is in check_corpus/: good.py is a correct student submission; each file of broken/ redefines
one of its functions with one bug (a submission is good.py with the snippet appended). These tests run
the checker's plan, runner and analysis in this process, on trusted fixtures, to stay quick; the
isolation cases (test_check_isolation.py) run real children.
"""

import csv
import importlib
import io
import json
import os
import types

import pytest
import torch

from simple_conv_net.check import (analysis, batch, forms, grade, plans, records, report, rubric, runner, sandbox,
                                   schedule, training)
from simple_conv_net.check.sandbox import Limits
from simple_conv_net.check.targets import resolve
from simple_conv_net.compare import compare

from check_helpers import CORPUS, FULL, QUICK, compose, load, run_in_process

# snippet -> (function, status, words the checker's finding must contain)
DIAGNOSES = {
    "kernel_flipped": ("conv2d_vector", "fail", "kernel is flipped"),
    "kernel_transposed": ("conv2d_vector", "fail", "each filter is transposed"),
    "bias_missing": ("conv2d_vector", "fail", "the bias is missing"),
    "bias_twice": ("fc_layer_vector", "fail", "the bias is added twice"),
    "bias_wrong_axis": ("fc_layer_scalar", "fail", "bias is indexed by the sample"),
    "first_filter_only": ("conv2d_vector", "fail", "only the first filter is right"),
    "first_sample_only": ("pool2d_vector", "fail", "only the first sample is right"),
    "batch_hardcoded": ("conv2d_vector", "fail", "right at N=64 but not at N=1"),
    "samples_mixed": ("fc_layer_vector", "fail", "samples are mixed up"),
    "window_offset": ("pool2d_scalar", "fail", "-1 row and -1 column away"),
    "stride_off": ("pool2d_vector", "fail", "stride one less than asked"),
    "reshape_channel_last": ("reshape_vector", "fail", "channel-last order"),
    "reshape_column_major": ("reshape_scalar", "fail", "column-major"),
    "uninitialised": ("conv2d_vector", "fail", "the last column is wrong"),
    "mutates_input": ("relu_vector", "fail", "argument 'input' is changed by the call"),
    "graph_cut_data": ("conv2d_vector", "fail", "graph cut for 'weight'"),
    "graph_cut_numpy": ("fc_layer_vector", "fail", "the output does not require grad"),
    "graph_cut_leaf": ("relu_vector", "fail", "new leaf tensor"),
    "backward_error": ("relu_vector", "fail", "backward raises ValueError"),
    "wrong_gradient": ("relu_vector", "fail", "gradient w.r.t. 'input' is wrong"),
    "dtype_float64": ("fc_layer_vector", "fail", "returns torch.float64 for torch.float32"),
    "max_from_zero": ("pool2d_vector", "fail", "running maximum starts at 0"),
    "ties_last": ("pool2d_vector", "pass", "tied maxima the gradient goes to another maximum"),
}


@pytest.fixture(scope="module")
def good():
    return load(CORPUS / "good.py")


@pytest.mark.parametrize("snippet", DIAGNOSES)
def test_each_bug_gets_its_diagnosis(snippet, tmp_path, one_thread):
    function, status, words = DIAGNOSES[snippet]
    module = load(compose(snippet, tmp_path))
    result = run_in_process(module, function, options=FULL if snippet == "batch_hardcoded" else QUICK)
    findings = result.diagnoses + result.notes
    assert result.status == status, findings
    assert any(words in finding for finding in findings), findings


def test_diagnoses_carry_their_evidence(tmp_path, one_thread):
    """'matches native with the kernel flipped: max error 2e-7; as written: 1.4', and the first entry that differs."""
    result = run_in_process(load(compose("kernel_flipped", tmp_path)), "conv2d_vector")
    (finding,) = [f for f in result.diagnoses if "flipped" in f]
    assert "matches native with that change (max rel error" in finding and "as written it is" in finding
    assert "first differing entry [" in finding and "where native gives" in finding


def test_a_cut_graph_an_error_in_backward_and_a_wrong_gradient_are_three_findings(tmp_path, one_thread):
    texts = {}
    for snippet in ("graph_cut_numpy", "backward_error", "wrong_gradient"):
        function = DIAGNOSES[snippet][0]
        result = run_in_process(load(compose(snippet, tmp_path / snippet)), function)
        texts[snippet] = [c.detail for c in result.checks if c.name.startswith(("graph", "gradient")) and not c.passed]
        assert texts[snippet], snippet
    assert "does not require grad" in texts["graph_cut_numpy"][0]
    assert "backward raised ValueError" in texts["backward_error"][0]
    assert any("max rel" in text for text in texts["wrong_gradient"])


def test_relu_kink_is_a_note_not_a_failure(good, one_thread):
    """good.py's relu_vector is clamp(min=0), whose gradient at exactly 0 is 1 (PyTorch's relu: 0)."""
    result = run_in_process(good, "relu_vector")
    assert result.status == "pass"
    assert any("ReLU'(0) = 1 here, PyTorch uses 0" in note for note in result.notes)


def test_signature_changes_are_reported(tmp_path, one_thread):
    module = load(compose("signature_changed", tmp_path))
    style, note = grade.call_style(forms.HANDOUT["conv2d_vector"], runner.signature_of(module.conv2d_vector))
    assert style is False and "called without the device argument" in note
    assert run_in_process(module, "conv2d_vector").status == "pass"
    style, note = grade.call_style(forms.HANDOUT["pool2d_vector"], runner.signature_of(module.pool2d_vector))
    assert style is None and "cannot be called with the handout's 2 arguments" in note


def test_good_submission_passes_every_function(good, one_thread):
    for name, function in forms.HANDOUT.items():
        result = run_in_process(good, name)
        assert result.status == "pass", name
        if function.op in ("conv2d", "max_pool2d", "relu", "linear"):   # the check is there, and passes
            assert [c.name for c in result.checks if c.name.startswith("from-scratch")], name


# name -> (a definition calling the native op it is meant to compute, the native name the finding shows)
NATIVE = {
    "conv2d_vector": ("def conv2d_vector(x_in, conv_weight, conv_bias, device):\n"
                      "    return torch.nn.functional.conv2d(x_in, conv_weight, conv_bias)\n", "conv2d"),
    "conv2d_scalar": ("def conv2d_scalar(x_in, conv_weight, conv_bias, device):\n"
                      "    return torch.conv2d(x_in, conv_weight, conv_bias)\n", "conv2d"),
    "pool2d_vector": ("def pool2d_vector(a, device):\n    return torch.nn.functional.max_pool2d(a, 2)\n",
                      "max_pool2d"),
    "relu_vector": ("def relu_vector(a, device):\n    return torch.relu(a)\n", "relu"),
    "relu_scalar": ("def relu_scalar(a, device):\n    return a.relu()\n", "relu"),
    "fc_layer_vector": ("def fc_layer_vector(a, weight, bias, device):\n"
                        "    return torch.nn.functional.linear(a, weight, bias)\n", "linear"),
}


def _module(source: str):
    module = types.ModuleType("submission")
    exec(compile("import torch\n\n" + source, "submission.py", "exec"), module.__dict__)
    return module


@pytest.mark.parametrize("name", NATIVE)
def test_calling_the_native_op_loses_the_item(name, one_thread):
    """Right values from PyTorch's own op: the from-scratch check fails, and its rubric item earns nothing."""
    source, native = NATIVE[name]
    result = run_in_process(_module(source), name)
    failing = {c.name: c.detail for c in result.checks if not c.passed}
    assert result.status == "fail" and list(failing) == ["from-scratch"], failing
    assert native in failing["from-scratch"]
    assert any("from scratch" in d for d in result.diagnoses), result.diagnoses
    scored = report.rescore(_report_of({name: result}), rubric.load("homework"))
    items = [item for item in scored["rubric"]["items"] if name in item["functions"]]
    assert all(item["score"] == 0 for item in items) and all("from-scratch" in i["detail"] for i in items)


def test_unfold_costs_half_of_task_2a(good, one_thread):
    """conv2d_vector with PyTorch's im2col (F.unfold) and its own matrix product: right values, half of 2a."""
    source = ("def conv2d_vector(x_in, conv_weight, conv_bias, device):\n"
              "    n, _, s, _ = x_in.shape\n    c_out, _, k, _ = conv_weight.shape\n"
              "    columns = torch.nn.functional.unfold(x_in, k)\n"
              "    z = conv_weight.reshape(c_out, -1) @ columns + conv_bias.reshape(1, -1, 1)\n"
              "    return z.reshape(n, c_out, s - k + 1, s - k + 1)\n")
    result = run_in_process(_module(source), "conv2d_vector")
    failing = {c.name: c.detail for c in result.checks if not c.passed}
    assert list(failing) == ["im2col by hand"] and "torch.nn.functional.unfold" in failing["im2col by hand"]
    scored = report.rescore(_report_of({"conv2d_vector": result}), rubric.load("homework"))
    assert [item["score"] for item in scored["rubric"]["items"] if item["name"].startswith("Task 2a")] == [30]
    own = run_in_process(good, "conv2d_vector")     # good.py builds its columns itself
    assert [c.passed for c in own.checks if c.name == "im2col by hand"] == [True]


def _report_of(results: dict) -> dict:
    return {"target": "t.py", "form": "handout", "functions": {n: report.function_entry(r) for n, r in results.items()},
            "epoch": {}, "notes": [], "seconds": 1.0}


# What a relu_vector returns -> (its dtype, when that is not the inputs'; how its values check says they were judged).
ODD_OUTPUTS = {
    "a > 0": ("torch.bool", "torch.bool values compared as float64"),
    "a.clamp(min=0).to(torch.float8_e4m3fn)": ("torch.float8_e4m3fn", "torch.float8_e4m3fn values compared as float64"),
    "torch.quantize_per_tensor(a.detach().clamp(min=0), 0.05, 0, torch.quint8)":
        ("torch.quint8", "torch.quint8 values compared as float64"),
    "a.clamp(min=0).half()": ("torch.float16", "torch.float16 values compared as float64"),
    "(a.clamp(min=0) * 1000).long()": ("torch.int64", "torch.int64 values compared as float64"),
    "torch.complex(a.clamp(min=0), torch.zeros_like(a))": ("torch.complex64", "cannot be compared with real ones"),
    "a.clamp(min=0).to_sparse()": (None, "a sparse_coo tensor on cpu: not compared"),
}


@pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor")
@pytest.mark.parametrize("returns", ODD_OUTPUTS)
def test_an_output_of_any_dtype_or_layout_is_judged_not_a_crash(returns, one_thread):
    """Outputs of other dtypes fail the dtype check; every values check says how the output was judged."""
    result = run_in_process(_module(f"def relu_vector(a, device):\n    return {returns}\n"), "relu_vector")
    dtype, words = ODD_OUTPUTS[returns]
    assert result.status == "fail"
    (dtype_check,) = [c for c in result.checks if c.name == "dtype"]
    assert dtype_check.passed == (dtype is None), dtype_check.detail
    assert dtype is None or f"{dtype} out for torch.float32 in" in dtype_check.detail
    values = [c for c in result.checks if c.name.startswith("values")]
    assert values and all(words in c.detail for c in values), [c.detail for c in values]


def test_a_checker_error_is_that_functions_grading_error(good, monkeypatch):
    """A bug of the checker's while it judges one function's records is a grading error of that function, said as
    such: its rubric item is not graded (no score), and the report says why."""
    def broken(*args):
        raise ZeroDivisionError("a bug in the checker")

    monkeypatch.setattr(analysis, "checks_of", broken)
    result = run_in_process(good, "pool2d_vector")
    assert result.status == "not graded" and result.grading_error.startswith("checker error: ZeroDivisionError")
    assert result.diagnoses[0].startswith("checker error: ZeroDivisionError: a bug in the checker: the checker could "
                                          "not analyse this function"), result.diagnoses
    assert "not a fault of the submission" in result.diagnoses[0]
    scored = report.rescore(_report_of({"pool2d_vector": result}), rubric.load("homework"))
    items = {item["name"]: item for item in scored["rubric"]["items"]}
    assert items["Task 2b: pool2d_vector"]["score"] is None and not items["Task 2b: pool2d_vector"]["graded"]
    assert items["Task 2b: pool2d_vector"]["not_graded"].startswith("pool2d_vector: checker error: ZeroDivisionError")
    assert all(item["graded"] for name, item in items.items() if name != "Task 2b: pool2d_vector")
    assert scored["grading_errors"] == ["pool2d_vector: " + result.grading_error] and not scored["graded"]
    assert report.exit_status([scored]) == 2
    monkeypatch.setattr(training, "analyse_training", broken)      # the training entry alike
    trained = grade.TrainingRun(unavailable="no MNIST").analyse({}, "handout")
    assert trained.status == "not graded" and trained.diagnoses[0].startswith("checker error: ZeroDivisionError")


def _training_request(settings: plans.Settings) -> dict:
    """The request of task 3 in the handout form (the test is skipped without MNIST)."""
    stuff = grade.material(settings)
    if stuff.mnist is None:
        pytest.skip("no MNIST")
    return training.request("handout", stuff.state, settings, {})


def test_a_batch_hard_coded_to_64_trains_and_is_its_own_finding(tmp_path, one_thread):
    """The handout's batch size hard-coded in conv2d_vector: training at 64 runs, accuracy is measured at 64 (the
    last batch padded), and the other batch size it fails at is a note of its own."""
    request = _training_request(plans.Settings(train_steps=2, test_samples=100))
    records = {}
    training.train_in_child(load(compose("batch_hardcoded", tmp_path)), request, records.__setitem__)
    result = training.analyse_training(records, training.native_run(request), {}, "handout")
    checks = {c.name: c for c in result.checks}
    assert checks["train runs"].passed, checks["train runs"].detail
    assert checks["train accuracy"].passed and "on the first 100 test images" in checks["train accuracy"].detail
    assert len(records["train"]["losses"]) == 2
    assert any("batch size hard-coded" in note and "conv2d_vector" in note for note in result.notes), result.notes


def test_an_error_measuring_accuracy_is_reported_as_such(tmp_path, one_thread):
    """A net that trains but fails on the test images keeps its losses; the error is the accuracy's."""
    request = _training_request(plans.Settings(train_steps=2, test_samples=100))
    module = load(CORPUS / "good.py")
    relu = module.relu_vector
    module.relu_vector = lambda a, device: relu(a, device) if torch.is_grad_enabled() else 1 / 0
    records = {}
    training.train_in_child(module, request, records.__setitem__)
    result = training.analyse_training(records, training.native_run(request), {}, "handout")
    checks = {c.name: c for c in result.checks}
    assert checks["train runs"].passed and len(records["train"]["losses"]) == 2
    assert not checks["train accuracy"].passed
    assert "measuring the accuracy raised ZeroDivisionError" in checks["train accuracy"].detail


def test_a_stopping_checker_stops_native_training():
    """Ctrl-C or SIGTERM during task 3: no child is started, and native training, in the checker's own process,
    stops before its first step instead of running all of them."""
    settings = plans.Settings(train_steps=5000, test_samples=100)
    key = tuple(_training_request(settings)[k] for k in ("seed", "steps", "data_dir", "test_samples"))
    seen = grade.Discovery({name: {"callable": True} for name in training.needed("handout").values()})
    sandbox.STOPPING.set()
    try:
        with pytest.raises(training.Stopped):
            grade.run_training("handout", seen, {}, resolve(str(CORPUS / "good.py")), grade.Options(settings))
    finally:
        sandbox.STOPPING.clear()
    assert key not in training._NATIVE_RUNS     # nothing half-trained is kept for the next submission


def test_skeleton_scores_zero_with_returns_none(one_thread):
    skeleton = load(CORPUS / "skeleton" / "simple_conv_net_func.py")
    functions = {name: run_in_process(skeleton, name) for name in forms.HANDOUT}
    for name, result in functions.items():
        if name != "diff_mse":
            assert result.status == "fail" and any("returns None" in d for d in result.diagnoses), name
    records = {}
    stuff = grade.material(plans.Settings())
    if stuff.mnist is not None:
        request = training.request("handout", stuff.state, plans.Settings(train_steps=2), {})
        training.train_in_child(skeleton, request, lambda name, record: records.__setitem__(name, record))
        functions["training"] = training.analyse_training(records, training.native_run(request), {}, "handout")
        assert "train runs" in [c.name for c in functions["training"].checks if not c.passed]
    scored = rubric.score(rubric.load("homework"), {n: report.function_entry(r) for n, r in functions.items()})
    assert scored["score"] == 0


@pytest.mark.parametrize("module_name,form", [("simple_conv_net.handout", "handout"), ("vector_ops", "functional")])
def test_the_projects_own_ops_pass_everything(module_name, form, one_thread):
    """Here at small batches (the handout's scalar functions run scalar_ops); test_check_isolation.py's slow
    tests run the command itself at its defaults on simple_conv_net.handout, vector_ops and scalar_ops."""
    module = importlib.import_module(module_name)
    small = grade.Options(plans.Settings(batch_sizes=(1, 3), speed_repeats=1, train_steps=0))
    for name in forms.FORMS[form]:
        result = run_in_process(module, name, form, small)
        assert result.status == "pass", (name, [c for c in result.checks if not c.passed], result.diagnoses)


def test_functional_form_hypotheses(one_thread):
    """A custom op with the kernel flipped and one whose log_softmax overflows, in the functional form."""
    import vector_ops

    class Ops:
        @staticmethod
        def conv2d(input, weight, bias=None, stride=1, padding=0):
            return vector_ops.conv2d(input, weight.flip(2, 3), bias, stride, padding)

        @staticmethod
        def log_softmax(input, dim):
            return (input.exp() / input.exp().sum(dim, keepdim=True)).log()

    conv = run_in_process(Ops, "conv2d", "functional")
    assert conv.status == "fail" and any("kernel is flipped" in d for d in conv.diagnoses)
    log_softmax = run_in_process(Ops, "log_softmax", "functional")
    assert any("maximum is not subtracted" in d for d in log_softmax.diagnoses), log_softmax.diagnoses


# ----------------------------------------------------------------------------- analysis on synthetic records


def _seen(call, output, **info):
    record = {"label": call.label, "output": output, "error": None, "seconds": [], "native_seconds": [],
              "output_info": {"type": "torch.Tensor", "dtype": str(output.dtype), "device": "cpu", **info},
              "args_after": {k: v.clone() for k, v in call.inputs.items()}, "grads": {}, "backward": None}
    return analysis.Seen(call, record)


def test_device_and_repeat_findings_from_records():
    call = plans.Call("random N=2", "random", "relu", {"input": torch.randn(2, 5)}, args=({"ref": "input"},))
    truth = torch.relu(call.inputs["input"])
    moved = _seen(call, truth.clone(), device="cuda:0")
    assert any("device is not honoured" in text for text in analysis.diagnose.dtype_device([moved]))
    again = plans.Call(**{**call.__dict__, "label": "repeat random N=2", "case": "repeat", "twin": "random N=2"})
    garbage = truth.clone()
    garbage[1, 4] = 3e38
    findings = analysis.diagnose.unrepeatable([_seen(call, truth.clone()), _seen(again, garbage)])
    assert findings and "never wrote (torch.empty partly filled)" in findings[0] and "[1, 4]" in findings[0]


def test_compare_marks_the_entries_beyond_the_tolerance():
    truth = torch.zeros(2, 3, dtype=torch.float64)
    candidate = torch.zeros(2, 3)
    candidate[1, 2] = 1.0
    mask = compare(truth, candidate).beyond
    assert mask.shape == (2, 3) and mask.sum() == 1 and mask[1, 2]


# ----------------------------------------------------------------------------- rubric and outputs


def _report(statuses: dict, form="handout") -> dict:
    def checks(name, status):
        kinds = ("train", "timing") if name == "training" else ("values", "values")
        return [] if status == "missing" else [{"name": f"{kinds[0]} a", "passed": True, "detail": ""},
                                               {"name": f"{kinds[1]} b", "passed": status == "pass",
                                                "detail": "max rel 1"}]
    functions = {name: {"status": status, "checks": checks(name, status), "diagnoses": ["why"] * (status != "pass"),
                        "notes": [], "seconds": 1.0, "signature": None, "output": "", "timing": {}}
                 for name, status in statuses.items()}
    return {"target": "t.py", "form": form, "functions": functions, "epoch": {}, "notes": [], "seconds": 3.0}


def test_homework_rubric_split_and_cap():
    homework = rubric.load("homework")
    assert homework.max_score == 100 and homework.total_points == 110
    assert [item.points for item in homework.items] == [20, 60, 10, 10, 10]
    everything = {name: "pass" for name in forms.HANDOUT} | {"training": "pass"}
    assert report.rescore(_report(everything), homework)["score"] == 100   # 110 earned, capped
    half = everything | {"conv2d_vector": "fail"}
    assert report.rescore(_report(half), homework)["score"] == 80          # half of 2a's 60 lost
    assert report.rescore(_report(everything | {"conv2d_vector": "missing", "pool2d_vector": "missing"}),
                          homework)["score"] == 40


def test_a_rubric_file_is_checked(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"max_score": 5, "items": [{"name": "conv", "points": 5, "credit": "all",
                                                            "functions": ["conv2d_vector"], "checks": ["values"]}]}))
    mine = rubric.load(str(path))
    assert report.rescore(_report({"conv2d_vector": "fail"}), mine)["score"] == 0
    assert report.rescore(_report({"conv2d_vector": "pass"}), mine)["score"] == 5
    path.write_text(json.dumps({"items": [{"name": "x", "points": -1, "functions": ["a"], "checks": ["b"]}]}))
    with pytest.raises(rubric.RubricError, match="'points' >= 0"):
        rubric.load(str(path))
    with pytest.raises(rubric.RubricError, match="neither a built-in one"):
        rubric.load(str(tmp_path / "missing.json"))


def test_outputs_of_one_report():
    scored = report.rescore(_report({"conv2d_vector": "fail", "relu_vector": "pass"}), rubric.load("homework"))
    results = report.gradescope(scored)
    assert set(results) >= {"score", "tests"} and results["score"] == scored["score"]
    assert {"name", "score", "max_score", "output", "status"} <= set(results["tests"][0])
    assert [t["max_score"] for t in results["tests"]] == [20, 60, 10, 10, 10]
    assert "why" in results["tests"][1]["output"]
    markdown = report.feedback(scored)
    assert "## `conv2d_vector`: fail" in markdown and "- why" in markdown and "**values b**: max rel 1" in markdown
    assert "at most 1e-10 in float64; in float32 at most 1e-5, or 4 times native float32's own error" in markdown
    card = report.card(scored)
    assert "conv2d_vector: fail" in card and "  ! why" in card and f"score {scored['score']:g} / 100" in card
    assert not report.passed(scored)


def test_gradebook_cells_cannot_be_formulas():
    """A folder named like a spreadsheet formula is written as text, not run by the spreadsheet."""
    scored = report.rescore(_report({"relu_vector": "pass"}), rubric.load("homework"))
    unusable = dict(scored, functions={}, notes=["-2+3 is not a submission"])
    text = batch.gradebook({"=HYPERLINK(\"http://example.com\")": scored, "@SUM(A1)": unusable, "+1": scored})
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert [row[0] for row in rows] == ["'=HYPERLINK(\"http://example.com\")", "'@SUM(A1)", "'+1"]
    assert rows[1][-1] == "'-2+3 is not a submission"


def test_records_the_child_did_not_write_are_refused(tmp_path, monkeypatch):
    """A record read back needs this run's signature, a regular file under the size limit and the shape the
    child writes."""
    folder = tmp_path / "results"
    folder.mkdir()
    secret = os.urandom(records.SECRET_BYTES)
    write = records.Writer(str(folder), secret)
    write("done", {})
    assert records.read(folder, secret) == {"done": {}}
    with pytest.raises(records.Unreadable, match="done.pt was not written by the child"):
        records.read(folder, os.urandom(records.SECRET_BYTES))
    write("call-000", {"label": 7})
    with pytest.raises(records.Unreadable, match=r"call-000.pt is not shaped .*\['label'\] is of type int"):
        records.read(folder, secret)
    os.remove(folder / "call-000.pt")
    torch.save({}, folder / "done.pt")
    with pytest.raises(records.Unreadable, match="signature"):
        records.read(folder, secret)
    write("done", {})
    os.mkfifo(folder / "call-001.pt")
    with pytest.raises(records.Unreadable, match="call-001.pt is not a regular file"):
        records.read(folder, secret)
    os.remove(folder / "call-001.pt")
    os.symlink(folder / "done.pt", folder / "call-002.pt")
    with pytest.raises(records.Unreadable, match="call-002.pt is not a regular file"):
        records.read(folder, secret)
    os.remove(folder / "call-002.pt")
    monkeypatch.setattr(records, "RECORD_LIMIT", 16)
    with pytest.raises(records.Unreadable, match="done.pt holds .* bytes, more than the 16"):
        records.read(folder, secret)


def test_limits_and_settings_are_recorded():
    options = grade.Options(plans.Settings(train_steps=0), Limits(memory_mb=512), budget=schedule.Budget(3, 2))
    record = grade.settings_record(options)
    assert record["timeout"] == 3 and record["call_timeout"] == 2 and record["memory_mb"] == 512
    assert record["train_steps"] == 0
    assert Limits(timeout=10, threads=2).cpu_seconds == 30

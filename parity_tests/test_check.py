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
import time
import types

import pytest
import torch

from simple_conv_net.check import (analysis, batch, forms, grade, plans, platforms, records, report, rubric,
                                   runner, sandbox, schedule, training)
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
    "pool_stride_one": ("pool2d_scalar", "fail", "windows are taken at stride 1 in both directions"),
    "pool_stride_one_first_channel": ("pool2d_vector", "fail", "stride*m); and also only channel 0 is computed"),
    "uninitialised_offset": ("pool2d_vector", "fail", "NaN or huge values for finite inputs"),
    "hard_coded_sizes": ("conv2d_vector", "pass", "it hard-codes the homework's sizes"),
    "scalar_graph_cut": ("relu_scalar", "pass", "no gradient flows through this function"),
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


def test_bugs_in_pairs_and_memory_never_written(tmp_path, one_thread):
    """Real bugs come in pairs: uninitialised memory (NaN, from the child's fill) is named whatever else is wrong,
    and the windows read one row and column late are found on the entries the function wrote; a missing bias is
    also a parameter never used (not a cut graph)."""
    offset = run_in_process(load(compose("uninitialised_offset", tmp_path)), "pool2d_vector").diagnoses
    assert offset[0].startswith("the output holds") and "memory it never wrote" in offset[0], offset
    assert any("+1 row and +1 column away" in d for d in offset), offset
    assert not any("no known cause" in d for d in offset), offset
    missing = run_in_process(load(compose("bias_missing", tmp_path)), "conv2d_vector").diagnoses
    assert any("'bias' is never used" in d for d in missing) and not any("graph cut" in d for d in missing), missing


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
    def broken(*args, **kwargs):
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


def test_slow_functions_train_the_steps_that_fit(tmp_path, monkeypatch, one_thread):
    """Task 3 with a pool2d_vector that loops over the batch, on a budget of 1 s: the steps that fit it (at least
    MIN_STEPS, here 2), then the accuracy on the test images that fit (at least MIN_TEST_SAMPLES), each beside
    native's over the same steps and images; a correct net passes every train check."""
    monkeypatch.setattr(training, "MIN_STEPS", 2)
    monkeypatch.setattr(training, "MIN_TEST_SAMPLES", 128)
    request = dict(_training_request(plans.Settings(train_steps=200, test_samples=1000)), budget=1.0)
    module = load(compose("slow/batch_loop", tmp_path))
    module.conv2d_vector = load(CORPUS / "good.py").conv2d_vector      # the batch loop of pooling only: quicker
    records = {}
    training.train_in_child(module, request, records.__setitem__)
    run = records["train"]
    steps, images = len(run["losses"]), run["test_samples"]
    assert 2 <= steps < 200 and 128 <= images < 1000, (steps, images)
    native = training.native_run(request, steps=steps, test_samples=images)
    assert len(native["losses"]) == steps and native["test_samples"] == images
    result = training.analyse_training(records, native, {}, "handout", requested=200)
    checks = {c.name: c for c in result.checks}
    assert all(checks[name].passed for name in ("train runs", "train loss decreases", "train every layer learns",
                                                "train accuracy")), result.checks
    assert f"{steps} of 200 SGD steps (those that fit its time budget" in checks["train runs"].detail
    assert f"after {steps} steps" in checks["train accuracy"].detail and "after the same steps" in \
        checks["train accuracy"].detail


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


def test_the_training_checks_sgd_is_torch_optims_bit_for_bit():
    """Task 3's written-out SGD (it spares the checker and each training child torch.optim's import of
    torch._dynamo) takes exactly torch.optim.SGD's steps at the homework's lr and momentum, a parameter without a
    gradient left alone."""
    torch.manual_seed(0)
    start = [torch.randn(4, 3), torch.randn(3), torch.randn(2)]
    ours, theirs = ([p.clone().requires_grad_() for p in start] for _ in range(2))
    optimizers = (training.SGD(ours, lr=training.LR, momentum=training.MOMENTUM),
                  torch.optim.SGD(theirs, lr=training.LR, momentum=training.MOMENTUM))
    for _ in range(4):
        x = torch.randn(5, 4)
        for parameters, optimizer in zip((ours, theirs), optimizers):
            optimizer.zero_grad()
            (torch.tanh(x @ parameters[0] + parameters[1]) ** 2).sum().backward()   # parameters[2]: no gradient
            optimizer.step()
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs))
    assert torch.equal(ours[2], start[2])


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


def test_unfold_is_the_homeworks_rule_only(one_thread):
    """A custom op's conv2d built on F.unfold (the functional form) is no homework: no im2col check, a full point."""
    def conv2d(input, weight, bias=None, stride=1, padding=0):
        (s_h, s_w), (p_h, p_w) = (s if isinstance(s, tuple) else (s, s) for s in (stride, padding))
        n, _, h, w = input.shape
        c_out, _, k_h, k_w = weight.shape
        columns = torch.nn.functional.unfold(input, (k_h, k_w), padding=(p_h, p_w), stride=(s_h, s_w))
        h_out, w_out = (h + 2 * p_h - k_h) // s_h + 1, (w + 2 * p_w - k_w) // s_w + 1
        z = weight.reshape(c_out, -1) @ columns + (0 if bias is None else bias.reshape(1, -1, 1))
        return z.reshape(n, c_out, h_out, w_out)

    small = grade.Options(plans.Settings(batch_sizes=(1, 3), speed_repeats=1, train_steps=0))
    result = run_in_process(types.SimpleNamespace(conv2d=staticmethod(conv2d)), "conv2d", "functional", small)
    assert not [c.name for c in result.checks if c.name.startswith("im2col")]
    scored = report.rescore(dict(_report_of({"conv2d": result}), form="functional"),
                            rubric.functions_rubric(["conv2d"], training=False))
    assert scored["score"] == 1, scored["rubric"]["items"]


def test_only_what_ran_is_judged(tmp_path, one_thread):
    """No check, diagnosis or hypothesis from a call that did not return: conv2d_vector with the batch size
    hard-coded to 64, its N=64 calls stopped, is judged on the calls at N=1 and 4 alone, which raise; nothing says
    it is right at 64 or hard-codes a batch size (that needs two batch sizes that ran, one of them right)."""
    module = load(compose("batch_hardcoded", tmp_path))
    function = forms.HANDOUT["conv2d_vector"]
    calls, _ = grade.plan(function, "handout", FULL, runner.signature_of(module.conv2d_vector))
    unrun = {c.label for c in calls if c.n == 64}
    assert unrun and any(c.n == 1 for c in calls)
    result = schedule.Result(records={c.label: runner.run_call(module.conv2d_vector, c.request())
                                      for c in calls if c.label not in unrun},
                             fates={c.label: schedule.Fate("stopped", "not checked: did not return within 9 s")
                                    if c.label in unrun else schedule.Fate("returned") for c in calls})
    judged = analysis.analyse(function, calls, result)
    assert judged.status == "error", judged.diagnoses          # every call that ran raised
    assert {item["name"] for item in judged.not_checked} == unrun
    named = [c.name for c in judged.checks] + [c.detail for c in judged.checks] + judged.diagnoses + judged.notes
    assert not any("N=64" in text or "not reached" in text or "hard-coded" in text for text in named), named
    assert any("shape '[64, 20, 24, 24]' is invalid" in d for d in judged.diagnoses), judged.diagnoses


# ----------------------------------------------------------------------------- the schedule, on a fake clock


def _calls(*specs):
    """Call-like objects for the schedule, which needs nothing but these fields: (label, stage, family, n, work)."""
    return [types.SimpleNamespace(label=label, stage=stage, family=family, forward_family=None, n=n, repeat=1,
                                  work=work, entries=work, grad=(), size_text="")
            for label, stage, family, n, work in specs]


class FakeChildren:
    """An ``execute`` on a fake clock: each call takes durations[label] seconds (inf: it hangs); a call past the
    deadline its pace gives is stopped, as sandbox.run_child's watcher does."""

    def __init__(self, durations: dict) -> None:
        self.durations, self.now, self.children = durations, 0.0, []

    def __call__(self, calls, pace) -> schedule.Ran:
        self.children.append([c.label for c in calls])
        records, deadline = {}, pace(0, self.now)
        for done, call in enumerate(calls, 1):
            if deadline is None:
                return schedule.Ran(records, "halted", ready_seconds=0.0)
            took = self.durations[call.label]
            if self.now + took > deadline:
                self.now = deadline
                return schedule.Ran(records, "timeout", "stopped", ready_seconds=0.0)
            self.now += took
            records[call.label] = {"label": call.label, "seconds": [took], "native_seconds": []}
            deadline = pace(done, self.now)
        return schedule.Ran(records, ready_seconds=0.0)


def test_a_fast_function_runs_its_whole_plan_in_one_child():
    calls = _calls(("small", "small", "s", 2, 10), ("verdict", "graded", "g", 4, 1000), ("big", "sizes", "g", 64, 16000),
                   ("grad", "gradients", "g grad", 4, 1000))
    children = FakeChildren({"small": 0.01, "verdict": 0.02, "big": 0.1, "grad": 0.05})
    result = schedule.Schedule(calls, schedule.Budget(60, 120)).run(children)
    assert children.children == [["small", "verdict", "big", "grad"]]
    assert {label: fate.state for label, fate in result.fates.items()} == dict.fromkeys(children.children[0], "returned")


def test_calls_finished_before_the_child_is_seen_ready_are_timed_by_their_records():
    """The watcher may see a child ready only once it has written records: the pace times the calls it sees
    return, the others are timed from their records when the child ends (never from the clock's origin)."""
    calls = _calls(("a", "small", "s", 2, 10), ("b", "graded", "g", 4, 1000), ("c", "sizes", "g", 8, 2000))
    plan = schedule.Schedule(calls, schedule.Budget(60, 120))
    plan.running, plan.done, plan.last = calls, 0, None
    assert plan.pace(2, 5000.0) is not None and plan.result.fates == {}
    plan.pace(3, 5001.0)
    assert plan.result.fates["c"].seconds == 1.0
    plan._absorb(schedule.Ran({c.label: {"label": c.label, "seconds": [0.25], "native_seconds": []} for c in calls}))
    assert [plan.result.fates[label].seconds for label in "abc"] == [0.25, 0.25, 1.0]


def test_a_slow_function_runs_what_fits_its_budget():
    """The verdict call runs whatever its estimate (the graded shapes decide); the calls that would not fit what is
    left of the budget are not checked, saying their estimate; a cheaper one after them still runs."""
    calls = _calls(("small", "small", "s", 2, 10), ("verdict", "graded", "g", 4, 1000), ("again", "graded", "g", 4, 1000),
                   ("big", "sizes", "g", 64, 16000), ("small N=1", "sizes", "s", 1, 5))
    children = FakeChildren({"small": 1.0, "verdict": 20.0, "again": 20.0, "big": 320.0, "small N=1": 0.5})
    result = schedule.Schedule(calls, schedule.Budget(30, 120)).run(children)
    states = {label: fate.state for label, fate in result.fates.items()}
    assert states == {"small": "returned", "verdict": "returned", "again": "skipped", "big": "skipped",
                      "small N=1": "returned"}
    assert result.fates["big"].reason.startswith("not checked: estimated 320 s at N=64 (budget 30 s, 8.5 s left)")
    assert not result.ended and children.now == 21.5


def test_a_call_past_its_limit_is_stopped_and_the_plan_goes_on():
    """A call that takes far longer than its estimate is stopped at its limit (not judged), its family's estimate
    rises to what it took, and the calls that still fit run in another child; a first call that does not return
    within the ceiling is a timeout, and nothing else runs."""
    calls = _calls(("small", "small", "s", 2, 10), ("verdict", "graded", "g", 4, 1000), ("N=8", "sizes", "g", 8, 2000),
                   ("small N=1", "sizes", "s", 1, 5))
    children = FakeChildren({"small": 0.1, "verdict": 1.0, "N=8": 500.0, "small N=1": 0.05})
    result = schedule.Schedule(calls, schedule.Budget(60, 120)).run(children)
    assert result.fates["N=8"].state == "stopped" and "did not return within 10 s" in result.fates["N=8"].reason
    assert result.fates["small N=1"].state == "returned" and len(children.children) == 2
    hangs = FakeChildren({"small": float("inf"), "verdict": 1.0, "N=8": 1.0, "small N=1": 1.0})
    result = schedule.Schedule(calls, schedule.Budget(60, 5)).run(hangs)
    assert result.ended == "timeout" and "did not return within 5 s" in result.reason
    assert {fate.state for label, fate in result.fates.items() if label != "small"} == {"unreached"}


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


def test_the_score_says_what_it_means():
    """The homework's items add up to 110, capped at 100: the card shows the sum before the cap; a function whose
    counted checks all pass but which fails says why in its item."""
    everything = {name: "pass" for name in forms.HANDOUT} | {"training": "pass"}
    scored = report.rescore(_report(everything), rubric.load("homework"))
    assert scored["score"] == 100 and scored["rubric"]["sum"] == 110 and scored["graded"]
    card = report.card(scored)
    assert "score 100 / 100 (the items earned 110 of their 110 points, 10 of them bonus; the score is capped at " \
           "100)" in card
    assert "checks: of every check of the function, how many pass (the rubric counts some kinds only" in card
    assert "capped at 100" in platforms.gradescope(scored)["output"]
    odd = _report({"conv2d_vector": "pass"})
    odd["functions"]["conv2d_vector"]["status"] = "fail"
    odd["functions"]["conv2d_vector"]["checks"].append({"name": "graph connected", "passed": False, "detail": "cut"})
    (item,) = [i for i in report.rescore(odd, rubric.load("homework"))["rubric"]["items"] if "conv2d_vector" in
               i["functions"]]
    assert "2/2 of the checks this item counts pass; it is 'fail' for checks the item does not count: graph " \
           "connected" in item["detail"], item["detail"]


def test_a_speed_item_scores_by_thresholds(tmp_path):
    """Speed earns points only in an item of kind 'speed', by the instructor's thresholds (the homework has none)."""
    assert all(item.kind == "checks" for item in rubric.load("homework").items)
    path = tmp_path / "speedy.json"
    path.write_text(json.dumps({"items": [{"name": "fast conv", "kind": "speed", "points": 4,
                                           "functions": ["conv2d_vector"], "thresholds": [[10, 0.5], [2, 1]]}]}))
    speedy = rubric.load(str(path))
    entry = {"status": "pass", "checks": [], "timing": {"speed mnist N=64": {"seconds": 0.03, "native": 0.01}}}
    for seconds, earned in ((0.015, 4), (0.03, 2), (0.5, 0)):
        entry["timing"]["speed mnist N=64"]["seconds"] = seconds
        (item,) = rubric.score(speedy, {"conv2d_vector": entry})["items"]
        assert item["score"] == earned and "x native at speed mnist N=64" in item["detail"], item
    (item,) = rubric.score(speedy, {"conv2d_vector": dict(entry, timing={})})["items"]
    assert item["score"] == 0 and "never timed" in item["detail"]
    path.write_text(json.dumps({"items": [{"name": "x", "kind": "speed", "points": 1, "functions": ["f"],
                                           "thresholds": [[0, 1]]}]}))
    with pytest.raises(rubric.RubricError, match="'thresholds'"):
        rubric.load(str(path))


def test_progress_is_a_live_line_on_a_terminal_and_plain_lines_off_one():
    from simple_conv_net.check.progress import Progress

    stream = io.StringIO()
    plain = Progress(stream, live=False)
    plain.start("student03", 2)
    plain.call("conv2d_scalar", "mnist N=2", 3, 9, 0.0, 40.0)
    plain.finished("conv2d_scalar", "pass", 41.2, "12/12 checks pass")
    assert stream.getvalue() == "student03: conv2d_scalar: pass in 41 s (12/12 checks pass)\n"
    live = Progress(io.StringIO(), live=True)
    live.start("student03", 14)
    live.call("conv2d_scalar", "mnist N=2", 3, 9, time.monotonic() - 5, 40.0)
    assert live.line() == "student03: 0/14 done | conv2d_scalar mnist N=2 (call 3/9, 5 s of ~40 s)"
    live.close()


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
    results = platforms.gradescope(scored)
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

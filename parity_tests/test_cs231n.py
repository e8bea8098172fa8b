"""The cs231n form (issue 19): CS231n assignment 2's cs231n/layers.py, numpy forward/backward pairs.

Every fixture of the corpus (parity_tests/check_corpus/cs231n/MANIFEST.json) is composed and its
functions are run through the checker's plan, the form's adapter and its judging, in this process
(check_helpers.run_in_process): what the checker finds wrong must be exactly what the manifest
says, in the class of cases it says, with the diagnosis. A bug fixture runs the functions its
snippet defines and those the manifest names (every other function is the good file's own, which
test_good_package_passes_everything runs); ``-m slow`` runs every function of every fixture. The
command itself (child processes, the package import, the report) is run on the good package and
on a broken one.
"""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "check_corpus"))

from check_helpers import QUICK, run_in_process  # noqa: E402
from corpora import HERE, compose, manifest  # noqa: E402

from simple_conv_net.check import drift, forms, rubric  # noqa: E402
from simple_conv_net.check.forms import names_in_source  # noqa: E402
from simple_conv_net.check.report import function_entry  # noqa: E402

SPEC = manifest("cs231n")
FIXTURES = SPEC["fixtures"]
FORM = forms.FORMS["cs231n"]

# What the checker's diagnosis of each fixture's function says (a phrase of it).
SAYS = {
    "affine_dw_transposed": {"affine_backward": "dw is transposed"},
    "affine_dx_dw_swapped": {"affine_backward": "dx and dw are swapped"},
    "affine_db_not_summed": {"affine_backward": "db is not summed over the batch"},
    "conv_db_not_summed_over_positions": {"conv_backward_naive": "not summed over the output positions"},
    "conv_db_not_summed_over_batch": {"conv_backward_naive": "db is not summed over the batch"},
    "conv_dx_stride_ignored": {"conv_backward_naive": "dx ignores the stride"},
    "conv_dx_padding_not_cropped": {"conv_backward_naive": "dx still has its padding"},
    "softmax_dx_missing_1_over_n": {"softmax_loss": "missing the 1/N"},
    "softmax_dx_extra_1_over_n": {"softmax_loss": "extra 1/N"},
    "softmax_max_not_subtracted": {"softmax_loss": "row max is not subtracted"},
    "softmax_mutates_input": {"softmax_loss": "changes its argument x in place"},
    "relu_mask_from_dout": {"relu_backward": "mask is taken from dout"},
    "relu_mask_wrong_sign": {"relu_backward": "wrong sign"},
    "relu_backward_mutates_dout": {"relu_backward": "changes its argument dout in place"},
    "maxpool_gradient_to_every_tie": {"max_pool_backward_naive": "every entry tied for its maximum"},
    "batchnorm_alt_missing_1_over_n": {"batchnorm_backward_alt": "summed, not averaged"},
    "batchnorm_alt_extra_1_over_n": {"batchnorm_backward_alt": "extra 1/N"},
    "batchnorm_mean_var_as_constants": {"batchnorm_backward": "mean and variance as constants",
                                        "spatial_batchnorm_backward": "mean and variance as constants"},
    "batchnorm_dgamma_dbeta_wrong_axis": {"batchnorm_backward_alt": "summed over the features"},
    "batchnorm_running_stats_pytorch_momentum": {"batchnorm_forward": "PyTorch's momentum convention",
                                                 "spatial_batchnorm_forward": "PyTorch's momentum convention"},
    "spatial_batchnorm_per_sample": {"spatial_batchnorm_forward": "each sample's channel over its own positions",
                                     "spatial_batchnorm_backward": "right for its own forward"},
    "spatial_batchnorm_per_position": {"spatial_batchnorm_forward": "each position over the batch alone",
                                       "spatial_batchnorm_backward": "right for its own forward"},
    "dropout_not_inverted": {"dropout_forward": "not inverted dropout"},
    "dropout_mask_randn": {"dropout_forward": "drawn with randn"},
    "dropout_p_as_drop_probability": {"dropout_forward": "drop probability"},
    "py2_true_division_size": {"max_pool_forward_naive": "use //", "max_pool_backward_naive": "blocked"},
    "py2_xrange": {"max_pool_backward_naive": "Python 2's xrange; use range"},
    "numpy2_product": {"affine_forward": "use np.prod", "affine_backward": "blocked"},
    "numpy2_float_alias": {"conv_forward_naive": "np.float was removed in NumPy 1.24", "conv_backward_naive": "blocked"},
    "numpy2_int_alias": {"svm_loss": "np.int was removed in NumPy 1.24"},
    "numpy2_asscalar": {"softmax_loss": "use .item()"},
    "numpy2_reshape_newshape": {"affine_backward": "newshape= keyword is gone"},
    "numpy_inplace_same_kind": {"dropout_forward": "same_kind", "dropout_backward": "blocked"},
    "missing_module_scipy": {"conv_forward_naive": "scipy is not installed", "conv_backward_naive": "blocked"},
    "missing_module_im2col_cython": {"conv_forward_naive": "Cython extension", "conv_backward_naive": "blocked"},
    "conv_dx_crop_empty_at_pad0": {"conv_backward_naive": "at pad 0 dx is empty"},
    "maxpool_gradient_overwritten": {"max_pool_backward_naive": "overwrites another's instead of adding"},
    "batchnorm_eps_outside_sqrt": {name: "eps added outside the square root" for name in (
        "batchnorm_forward", "spatial_batchnorm_forward", "batchnorm_backward", "batchnorm_backward_alt",
        "spatial_batchnorm_backward")},
    "groupnorm_gamma_4d_only": {name: "passes with gamma (1, C, 1, 1), not with gamma (C,)" for name in (
        "spatial_groupnorm_forward", "spatial_groupnorm_backward")},
    "groupnorm_gamma_1d_only": {name: "passes with gamma (C,), not with gamma (1, C, 1, 1)" for name in (
        "spatial_groupnorm_forward", "spatial_groupnorm_backward")},
    "year_2017": {"dropout_forward": "as this file's year has it"},
}


def load_layers(package: Path):
    """The composed package imported as ``cs231n`` here (its layers module), as the child imports it."""
    for name in [m for m in sys.modules if m == "cs231n" or m.startswith("cs231n.")]:
        del sys.modules[name]
    sys.path.insert(0, str(package.parent))
    try:
        return importlib.import_module("cs231n.layers")
    finally:
        sys.path.remove(str(package.parent))


def outputs_of(result) -> set[str]:
    """What a function's result says is wrong, in the manifest's words (see its "outputs")."""
    found = {"missing"} if result.status == "missing" else set()
    for check in result.checks:
        if check.passed:
            continue
        kind, rest = check.name.removeprefix("general ").split(" ", 1)
        name = rest.split(" [")[0]
        if kind == "type":
            found.add("blocked" if name == "blocked" else
                      "error:" + check.detail.removeprefix("raises ").split(":")[0] if name == "error" else f"none:{name}")
        elif kind == "arguments":
            found.update(f"mutates:{n}" for n in re.findall(r"changes (\w+) in place", check.detail))
        elif kind == "convention":
            found.add("convention:p")
        elif kind in ("values", "gradient", "shape"):
            found.add(name)
    for note in result.notes:
        match = re.match(r"(\w+) within 1e-5", note)
        if match:
            found.add(f"note:{match.group(1)}")
        if note.startswith("p taken as the drop probability"):
            found.add("convention:p")
    return found


def judged(fixture: str, tmp_path: Path, names=None) -> dict:
    """{function: FunctionResult} of the fixture's functions (``names``, default all), run in this process."""
    module = load_layers(compose("cs231n", fixture, tmp_path))
    results = {}
    for name in names or FORM:
        if not hasattr(module, name):
            from simple_conv_net.check.analysis import unavailable
            results[name] = unavailable(FORM[name], "missing", f"{name} is not defined in the module")
            continue
        results[name] = run_in_process(module, name, "cs231n", QUICK)
    return results


def touched(fixture: str) -> list[str]:
    """The functions a fixture's snippets define, and those its manifest names."""
    names = set(FIXTURES[fixture]["expect"])
    for snippet in FIXTURES[fixture].get("snippets", []):
        names |= (names_in_source(HERE / "cs231n" / snippet) or set()) & set(FORM)
    return [name for name in FORM if name in names]


def assert_as_manifest(fixture: str, results: dict) -> None:
    expect = FIXTURES[fixture]["expect"]
    for name, result in results.items():
        wanted = expect.get(name, {"outputs": [], "cases": "assignment"})
        found = outputs_of(result)
        context = f"{fixture}: {name}: {result.status}, diagnoses {result.diagnoses}, notes {result.notes}"
        assert found == set(wanted["outputs"]), context
        failing = [c for c in result.checks if not c.passed]
        if not wanted["outputs"] or wanted["outputs"] == ["missing"] or \
                all(o.startswith(("note:", "convention:")) for o in wanted["outputs"]) and fixture != \
                "dropout_p_as_drop_probability":
            assert result.status in ("pass", "missing"), context
        elif wanted["cases"] == "general":
            assert result.status == "pass" and failing and all(c.name.startswith("general ") for c in failing), context
        else:
            assert result.status in ("fail", "error"), context
            decisive = [c for c in failing if not c.name.startswith("general ")]
            marks = {"ties": "tied", "large logits": "1000"}
            assert any(marks.get(wanted["cases"], "") in c.name for c in decisive), context
        phrase = SAYS.get(fixture, {}).get(name)
        if phrase:
            assert any(phrase in text for text in result.diagnoses + result.notes), context
        if wanted["outputs"] and all(o.startswith("error:") or o == "blocked" for o in wanted["outputs"]):
            assert result.status == "error" and (phrase is None or phrase in result.diagnoses[0]), context


def test_good_package_passes_everything(tmp_path):
    results = judged("good", tmp_path)
    assert_as_manifest("good", results)
    assert all(r.status == "pass" and not r.notes for r in results.values()), \
        {n: (r.status, r.diagnoses, r.notes) for n, r in results.items() if r.status != "pass" or r.notes}
    assert all(any(c.name.startswith("general ") for c in r.checks) for r in results.values()
               if FORM[r.name].op != "cs231n.dropout")
    functions = {name: function_entry(result) for name, result in results.items()}
    scored = rubric.score(rubric.load("cs231n"), functions)
    assert scored["score"] == scored["max_score"] == 11, scored


def test_starter_returns_none_everywhere(tmp_path):
    results = judged("starter", tmp_path)
    assert_as_manifest("starter", results)
    for name, result in results.items():
        if FIXTURES["starter"]["expect"][name]["outputs"][0].startswith("none:"):
            assert result.diagnoses[0].startswith("returns None"), (name, result.diagnoses)
    functions = {name: function_entry(result) for name, result in results.items()}
    scored = rubric.score(FORM.default_rubric({"functions": functions}), functions)
    assert scored["score"] == 0 and scored["max_score"] == 10, scored
    scored = rubric.score(rubric.load("cs231n"), functions)
    assert scored["score"] == 0 and scored["max_score"] == 11, scored


BUGS = [name for name, entry in FIXTURES.items() if name not in ("good", "starter", "py2_print_statement")]


# softmax_max_not_subtracted overflows on purpose (numpy says so, in this process): that is the bug under test
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("fixture", BUGS)
def test_fixture_finds_what_the_manifest_says(fixture, tmp_path):
    assert_as_manifest(fixture, judged(fixture, tmp_path, touched(fixture)))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("fixture", BUGS)
def test_fixture_every_function(fixture, tmp_path):
    assert_as_manifest(fixture, judged(fixture, tmp_path))


def test_strict_fails_the_general_cases(tmp_path):
    from dataclasses import replace

    from simple_conv_net.check import grade
    module = load_layers(compose("cs231n", "conv_dx_crop_empty_at_pad0", tmp_path))
    strict = grade.Options(replace(QUICK.settings, strict=True))
    result = run_in_process(module, "conv_backward_naive", "cs231n", strict)
    assert result.status == "fail"
    assert any("at pad 0 dx is empty" in text for text in result.diagnoses), result.diagnoses
    assert not any(c.name.startswith("general ") for c in result.checks)
    lenient = run_in_process(module, "conv_backward_naive", "cs231n", QUICK)
    assert lenient.status == "pass"

    def conv_item(backward) -> float:
        forward = {"status": "pass", "checks": [{"name": "values out [a case]", "passed": True}]}
        functions = {"conv_forward_naive": forward, "conv_backward_naive": function_entry(backward)}
        item = next(i for i in rubric.score(rubric.load("cs231n"), functions)["items"]
                    if i["name"] == "Convolution (naive)")
        return item["score"]
    assert conv_item(lenient) == 1 and conv_item(result) < 1


def test_drift_advice_names_the_change():
    def said(kind, message):
        return drift.advice({"type": kind, "message": message, "traceback": ""})
    assert "use print(...)" in said("SyntaxError", "Missing parentheses in call to 'print'. Did you mean print(...)? "
                                                   "(layers.py, line 372)")
    assert "line 372" in said("SyntaxError", "Missing parentheses in call to 'print'. (layers.py, line 372)")
    assert "np.bool_" in said("AttributeError", "module 'numpy' has no attribute 'bool'")
    assert said("AttributeError", "module 'numpy' has no attribute 'frobnicate'") is None
    assert "numpy is installed" in said("ModuleNotFoundError", "No module named 'numpy.fake'")


def test_default_rubric_drops_what_a_year_lacks():
    report = {"form": "cs231n", "functions": {name: {"status": "missing" if name == "svm_loss" else "pass",
                                                     "checks": []} for name in FORM}}
    kept = FORM.default_rubric(report)
    assert "svm_loss" not in {f for item in kept.items for f in item.functions}
    assert kept.max_score == len(rubric.load("cs231n").items) - 1


def _command(target: Path, *extra) -> dict:
    out = target.parent.parent / "report.json"
    run = subprocess.run([sys.executable, "-m", "simple_conv_net.check", str(target), "--json", str(out),
                          "--jobs", "2", *extra], capture_output=True, text=True, timeout=600)
    assert run.returncode in (0, 1), run.stderr[-2000:]
    return json.loads(out.read_text())


def test_command_on_layers_py_imports_the_package(tmp_path):
    """The command in child processes: layers.py given alone is imported as the package cs231n (its sibling im2col
    imports), the form is detected, the report has the form's name and the cs231n rubric."""
    target = compose("cs231n", "conv_via_im2col_module", tmp_path) / "layers.py"
    report = _command(target, "--only", "conv_forward_naive", "conv_backward_naive")
    assert report["form"] == "cs231n"
    assert {n: e["status"] for n, e in report["functions"].items()} == \
        {"conv_forward_naive": "pass", "conv_backward_naive": "pass"}
    assert report["rubric"]["rubric"] == "cs231n"


def test_command_on_python2_file_says_what_to_change(tmp_path):
    target = compose("cs231n", "py2_print_statement", tmp_path)
    report = _command(target, "--only", "relu_forward")
    entry = report["functions"]["relu_forward"]
    assert entry["status"] == "error"
    assert entry["diagnoses"][0].startswith("a Python 2 print statement at line"), entry["diagnoses"]
    assert "use print(...)" in entry["diagnoses"][0]
    line = next(number for number, text in enumerate((target / "layers.py").read_text().splitlines(), 1)
                if text.strip().startswith('print "conv out:"'))
    assert entry["diagnoses"][0].startswith(f"a Python 2 print statement at line {line}:"), entry["diagnoses"]
    assert report["notes"][0].startswith(f"unusable: a Python 2 print statement at line {line}:"), report["notes"]


def test_a_slow_forward_is_checked_without_central_differences(tmp_path, monkeypatch):
    """Central differences call the forward a dozen times more: a forward too slow for them (here: any, with no
    time allowed) leaves the consistency check out, with a note, and the function is judged on the rest."""
    from simple_conv_net.check.forms import cs231n as form
    monkeypatch.setattr(form, "FD_SECONDS", 0.0)
    result = judged("good", tmp_path, ["affine_backward"])["affine_backward"]
    assert result.status == "pass", result.diagnoses
    assert not any(c.name.startswith("consistency") for c in result.checks)
    assert any(n.startswith("consistency not checked at") and "too long for central differences" in n
               for n in result.notes), result.notes

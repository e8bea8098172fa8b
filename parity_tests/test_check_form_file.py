"""An instructor's own form file (--form path/to/form.py): docs/examples/my_course_form.py against the custom_form
corpus (parity_tests/check_corpus/custom_form/MANIFEST.json), in process and through the whole checker; the JSON's
"form" and a batch over submissions of two forms."""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from simple_conv_net.check import batch, cli, grade, plans, schedule
from simple_conv_net.check.targets import resolve
from simple_conv_net.check.forms import FILES, FORMS, SOURCES, form_of, form_request, load_form

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "my_course_form.py"
CORPUS = Path(__file__).parent / "check_corpus"
sys.path.insert(0, str(CORPUS))
from corpora import compose, manifest  # noqa: E402

sys.path.remove(str(CORPUS))

SETTINGS = plans.Settings(train_steps=0)
CUSTOM = manifest("custom_form")
WORDS = {"maxpool_backward_column_offset": "lands in column j + col, not j stride + col (rows right): a wrong index, "
                                           "right at stride 1 only",
         "conv_kernel_transposed": "each filter is transposed (the kernel's rows and columns swapped)"}


@pytest.fixture
def forget_forms():
    """Form files loaded by a test are forgotten after it (the registry is the process's)."""
    before = dict(FORMS)
    yield
    for name in [n for n in FORMS if n not in before]:
        FORMS.pop(name)
        FILES.pop(name, None)
        SOURCES.pop(name, None)


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_form(form, module, name: str, settings=SETTINGS):
    """One function through the form's plan, its child-side call (here, in process) and its judging."""
    function = form[name]
    calls, why = form.plan(function, settings, lambda: None, None, None)
    assert why is None and calls
    result = schedule.Schedule(calls, grade.Options().budget).run(
        schedule.in_process(lambda call: form.call(module, name, call.request())))
    return form.judge(function, calls, result, settings)


@pytest.mark.parametrize("fixture", list(CUSTOM["fixtures"]))
def test_example_form_on_each_fixture(fixture, tmp_path, forget_forms):
    """The good module passes every function; each bug fails the function its manifest names, at the case it names,
    with its diagnosis, and only that one."""
    form = load_form(EXAMPLE)
    module = _module(compose("custom_form", fixture, tmp_path), f"custom_{fixture}")
    expect = CUSTOM["fixtures"][fixture]["expect"]
    for name in form:
        result = run_form(form, module, name)
        if name not in expect:
            assert result.status == "pass", (fixture, name, result.checks, result.diagnoses)
            continue
        assert result.status == "fail", (fixture, name)
        output = {"Y": "output", "dX": "input"}[expect[name]["outputs"][0]]
        assert f"finding {expect[name]['cases']}: {output}" in result.notes
        assert any(WORDS[fixture] in text for text in result.diagnoses), result.diagnoses


def test_strict_fails_on_the_general_cases_too(tmp_path, forget_forms):
    form = load_form(EXAMPLE)
    module = _module(compose("custom_form", "maxpool_backward_column_offset", tmp_path), "custom_strict")
    relaxed = run_form(form, module, "maxpool_backward")
    strict = run_form(form, module, "maxpool_backward", plans.Settings(train_steps=0, strict=True))
    assert relaxed.status == "fail" and all(c.passed for c in relaxed.checks if "(general)" in c.name)
    assert any("(general)" in c.name and not c.passed for c in strict.checks)


def test_a_form_file_is_loaded_once_and_named_in_the_childs_request(forget_forms):
    form = load_form(EXAMPLE)
    assert load_form(str(EXAMPLE)) is form and FORMS["my-course"] is form
    assert form_request("my-course") == {"form": "my-course", "form_file": str(EXAMPLE),
                                         "form_source": EXAMPLE.read_text()}   # a sandboxed child cannot read the file
    assert form_request("handout") == {"form": "handout"}
    assert form_of(form_request("my-course")) is form


def test_bad_form_files_are_named(tmp_path, forget_forms, capsys):
    empty = tmp_path / "empty_form.py"
    empty.write_text("X = 1\n")
    broken = tmp_path / "broken_form.py"
    broken.write_text("import no_such_module_here\n")
    with pytest.raises(ValueError, match="expected the file to build a Form named FORM, got NoneType"):
        load_form(empty)
    with pytest.raises(ValueError, match="importing it raises ModuleNotFoundError"):
        load_form(broken)
    for value in (str(tmp_path / "missing.py"), "no-such-form"):
        with pytest.raises(SystemExit) as exit_:
            cli.parse_args(["x.py", "--form", value])
        assert exit_.value.code == 2
        assert "--form" in capsys.readouterr().err


def test_cli_takes_the_form_files_names_for_only(forget_forms):
    args = cli.parse_args(["layers.py", "--form", str(EXAMPLE), "--only", "conv_forward", "--strict"])
    assert args.form == "my-course" and args.only == ["conv_forward"]
    assert cli.options_of(args).settings.strict


def test_checker_runs_the_form_file_in_its_children(tmp_path, forget_forms):
    """Through the children: the file is loaded there too; the JSON's form is the file's form name."""
    name = load_form(EXAMPLE).name
    target = resolve(str(compose("custom_form", "conv_kernel_transposed", tmp_path)))
    report = grade.check(target, grade.Options(SETTINGS, jobs=2, form=name, only=("conv_forward", "conv_backward")))
    assert report["form"] == "my-course" and report["rubric"]["rubric"] == "my-course"
    assert report["functions"]["conv_forward"]["status"] == "fail"
    assert any(WORDS["conv_kernel_transposed"] in d for d in report["functions"]["conv_forward"]["diagnoses"])
    assert report["functions"]["conv_backward"]["status"] == "pass"
    assert json.loads(json.dumps(report))["form"] == "my-course"


RELU_FORM = '''from simple_conv_net.check.forms.adapter import Pair, form

FORM = form("relu-only", "relu_fwd(x) -> (y, cache), relu_bwd(dy, cache) -> dx, numpy, any layout",
            [Pair("relu_fwd", "relu_bwd", "relu", arguments=lambda t, o: (t["input"],),
                  gradients=lambda dx: {"input": dx})])
'''
RELU = '''import numpy as np


def relu_fwd(x):
    return np.maximum(x, 0), x


def relu_bwd(dy, cache):
    return dy * (cache > 0)
'''


def test_batch_over_two_forms(tmp_path, forget_forms):
    """One batch, two forms (detected per submission): a LeNet module (model) and a form file's module; each report
    names its form, the gradebook has a row each."""
    form_file = tmp_path / "relu_form.py"
    form_file.write_text(RELU_FORM)
    load_form(form_file)
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "alice.py").write_text(compose("lenet_model", "good", tmp_path / "model").read_text())
    (folder / "bob.py").write_text(RELU)
    out = tmp_path / "results"
    status = batch.grade_batch(folder, out, grade.Options(SETTINGS, jobs=2), None, False)
    reports = {name: json.loads((out / name / "report.json").read_text()) for name in ("alice", "bob")}
    assert status == 0
    assert (reports["alice"]["form"], reports["bob"]["form"]) == ("model", "relu-only")
    assert reports["bob"]["score"] == reports["bob"]["max_score"] == 2
    for name in ("alice", "bob"):
        assert (out / name / "feedback.md").read_text().strip() and (out / name / "results.json").is_file()
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert [row["submission"] for row in rows] == ["alice", "bob"]


def test_the_autograder_zip_refuses_a_form_file(tmp_path, forget_forms, capsys):
    """The zip does not carry the form file, so building one with it is refused, saying so (nothing is written)."""
    assert cli.main(["autograder", "--rubric", "homework", "--form", str(EXAMPLE), "-o", str(tmp_path / "a.zip")]) == 2
    assert "an instructor's form file is not packed into the autograder zip" in capsys.readouterr().err
    assert not (tmp_path / "a.zip").exists()


def test_an_unusable_submission_in_a_form_files_batch_keeps_its_form(tmp_path, forget_forms):
    """A submission with nothing to grade, in a batch of --form FILE: its row is scored by that form's rubric."""
    name = load_form(EXAMPLE).name
    folder = tmp_path / "submissions"
    (folder / "empty").mkdir(parents=True)
    out = tmp_path / "results"
    batch.grade_batch(folder, out, grade.Options(SETTINGS, jobs=1, form=name), None, False)
    report = json.loads((out / "empty" / "report.json").read_text())
    assert report["form"] == "my-course" and report["rubric"]["rubric"] == "my-course" and report["score"] == 0


def test_a_single_function_on_torch_tensors(tmp_path, forget_forms):
    """Single (no backward) with arrays="torch": a right function passes, the absolute value is named."""
    (tmp_path / "single_form.py").write_text(
        "from simple_conv_net.check.forms.adapter import Single, form\n"
        "FORM = form('single', 'rectify(x) on torch tensors', [Single('rectify', 'relu', lambda t, o: (t['input'],))],"
        " arrays='torch')\n")
    form = load_form(tmp_path / "single_form.py")
    right, wrong = (type("M", (), {"rectify": staticmethod(f)}) for f in (lambda x: x.clamp(min=0), lambda x: x.abs()))
    assert run_form(form, right, "rectify").status == "pass"
    result = run_form(form, wrong, "rectify")
    assert result.status == "fail" and result.diagnoses[0].startswith("the absolute value instead of max(x, 0)")

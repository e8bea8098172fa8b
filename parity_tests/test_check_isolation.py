"""python -m simple_conv_net.check with real child processes: isolation, the command line, batches.

check_corpus/isolation/misbehaving.py misbehaves differently in every function (an endless loop, a
segfault, sys.exit, os._exit, a runaway allocation, a print flood, deleting its working directory, a
process of its own left running, reading stdin); each must become that function's status while the
others are still checked. Timeouts are short here; the slow tests run the command at its defaults.
"""

import json
import os
import re
import shutil
import time

import pytest

from simple_conv_net.check import batch, cli, report
from simple_conv_net.check.sandbox import KEEP

from check_helpers import CORPUS, compose, make_class

ISOLATION = CORPUS / "isolation"
QUICK_ARGS = ["--train-steps", "0", "--speed-repeats", "1", "--jobs", "2"]

TIMEOUT = 6    # seconds: above what a child that works takes here under load, below the suite's patience

# function -> (status, words in its diagnoses)
MISBEHAVING = {
    "conv2d_scalar": ("timeout", f"did not finish in {TIMEOUT} s"),  # starts `sleep 600`, then an endless loop
    "pool2d_scalar": ("crashed", "SIGSEGV: segmentation fault"),     # reads address 0
    "relu_scalar": ("error", "the code called sys.exit(3)"),          # sys.exit, caught in the child
    "reshape_scalar": ("crashed", "exit code 4"),                     # os._exit, not catchable
    "conv2d_vector": ("timeout", f"did not finish in {TIMEOUT} s"),  # an endless print flood
    "pool2d_vector": ("pass", None),                                  # deletes its working directory, then works
    "fc_layer_vector": ("pass", None),
    "relu_vector": ("missing", None),
    "conv_weight2rows": ("error", "EOFError"),                        # input() with stdin closed
}


@pytest.fixture(scope="module")
def misbehaving(tmp_path_factory):
    """The report, score card and exit status of one run of the command on misbehaving.py."""
    folder = tmp_path_factory.mktemp("misbehaving")
    submission = folder / "misbehaving.py"
    shutil.copy(ISOLATION / "misbehaving.py", submission)
    before = submission.read_bytes()
    paths = {name: folder / name for name in ("report.json", "results.json", "feedback.md")}
    start = time.monotonic()
    status = cli.main([str(submission), "--timeout", str(TIMEOUT), "--memory-mb", "1024", *QUICK_ARGS,
                       "--json", str(paths["report.json"]), "--gradescope", str(paths["results.json"]),
                       "--feedback", str(paths["feedback.md"])])
    return {"status": status, "seconds": time.monotonic() - start, "unchanged": submission.read_bytes() == before,
            "report": json.loads(paths["report.json"].read_text()),
            "gradescope": json.loads(paths["results.json"].read_text()), "feedback": paths["feedback.md"].read_text()}


@pytest.mark.parametrize("function", MISBEHAVING)
def test_each_misbehaviour_is_its_functions_status(misbehaving, function):
    status, words = MISBEHAVING[function]
    entry = misbehaving["report"]["functions"][function]
    assert entry["status"] == status, entry["diagnoses"]
    if words:
        assert any(words in text for text in entry["diagnoses"]), entry["diagnoses"]


def test_a_runaway_allocation_hits_the_memory_limit(misbehaving):
    entry = misbehaving["report"]["functions"]["fc_layer_scalar"]
    assert entry["status"] == "error"
    assert any("can't allocate memory" in text and "memory limit" in text for text in entry["diagnoses"]), \
        entry["diagnoses"]


def test_a_print_flood_is_cut_and_the_submission_survives(misbehaving):
    flood = misbehaving["report"]["functions"]["conv2d_vector"]["output"]
    assert "conv2d_vector is thinking" in flood and "bytes left out" in flood and len(flood) < 3 * KEEP
    assert misbehaving["unchanged"]    # pool2d_vector deleted the files of its own copy only


def test_a_process_the_candidate_started_is_killed_with_it(misbehaving):
    printed = misbehaving["report"]["functions"]["conv2d_scalar"]["output"]
    pid = int(re.search(r"started pid (\d+)", printed).group(1))
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower()


def test_the_json_schema_and_the_other_outputs(misbehaving):
    result = misbehaving["report"]
    assert misbehaving["status"] == 1
    assert {"target", "form", "functions", "score", "max_score"} <= set(result) and result["form"] == "handout"
    for name, entry in result["functions"].items():
        assert entry["status"] in ("pass", "fail", "missing", "error", "timeout", "crashed"), name
        assert isinstance(entry["seconds"], float) and isinstance(entry["diagnoses"], list)
        assert all(set(check) == {"name", "passed", "detail"} for check in entry["checks"])
    assert result["functions"]["diff_mse"]["status"] == "missing"
    assert result["score"] == 20 and result["max_score"] == 100     # 2b and 2c pass
    assert misbehaving["gradescope"]["score"] == 20 and len(misbehaving["gradescope"]["tests"]) == 5
    assert "## `pool2d_scalar`: crashed" in misbehaving["feedback"]


@pytest.mark.parametrize("file,status,words", [
    ("import_error.py", "error", "No module named 'numpy_extensions_of_my_own'"),
    ("syntax_error.py", "error", "SyntaxError"),
    ("import_hang.py", "timeout", "importing the module: did not finish in 4 s"),
])
def test_a_module_that_does_not_import(file, status, words, tmp_path):
    path = tmp_path / "report.json"
    assert cli.main([str(ISOLATION / file), "--timeout", "4", *QUICK_ARGS, "--json", str(path)]) == 1
    functions = json.loads(path.read_text())["functions"]
    assert functions["conv2d_vector"]["status"] == status
    assert any(words in text for text in functions["conv2d_vector"]["diagnoses"])


def test_usage_and_target_errors_exit_2(tmp_path, capsys):
    assert cli.main([str(tmp_path / "nothing_here")]) == 2
    assert cli.main(["no_such_module_anywhere"]) == 2
    (tmp_path / "notes.txt").write_text("hello")
    assert cli.main([str(tmp_path / "notes.txt")]) == 2
    assert cli.main([str(ISOLATION / "misbehaving.py"), "--rubric", str(tmp_path / "missing.json")]) == 2
    assert "neither a built-in one" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--batch", str(tmp_path), "--json", "x.json"])
    assert exit_.value.code == 2


def test_batch_writes_everything_and_resumes(tmp_path, capsys):
    """Three submissions (a file, a broken file, a folder whose module imports a sibling); a second run skips
    them, a changed file is graded again."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    relu = "def relu_vector(a, device):\n    return a.clamp(min=0)\n"
    (folder / "alice.py").write_text("import torch\n\n" + relu)
    (folder / "bob.py").write_text("def relu_vector(a, device):\n    a[a < 0] = 0\n    return a\n")
    (folder / "carol").mkdir()
    (folder / "carol" / "helpers.py").write_text("import torch\n\n\n" + relu.replace("relu_vector", "relu"))
    (folder / "carol" / "simple_conv_net_func.py").write_text("from helpers import relu as relu_vector\n")
    args = ["--batch", str(folder), *QUICK_ARGS, "--rubric", "homework"]
    assert cli.main(args) == 1
    out = tmp_path / "submissions-results"
    rows = (out / batch.GRADEBOOK).read_text().splitlines()
    assert rows[0].startswith("submission,score,max_score,Task 1") and len(rows) == 4
    for name in ("alice", "bob", "carol"):
        assert {p.name for p in (out / name).iterdir()} == {batch.REPORT, batch.FEEDBACK, batch.GRADESCOPE}
    reports = {name: json.loads((out / name / batch.REPORT).read_text()) for name in ("alice", "bob", "carol")}
    assert reports["alice"]["functions"]["relu_vector"]["status"] == "pass"
    assert reports["carol"]["functions"]["relu_vector"]["status"] == "pass"
    assert reports["bob"]["functions"]["relu_vector"]["status"] == "fail"
    capsys.readouterr()
    assert cli.main(args) == 1
    assert "graded 0 submission(s), skipped 3 already graded" in capsys.readouterr().out
    (folder / "bob.py").write_text("import torch\n\n" + relu)
    cli.main(args)
    assert "graded 1 submission(s), skipped 2 already graded" in capsys.readouterr().out
    assert json.loads((out / "bob" / batch.REPORT).read_text())["functions"]["relu_vector"]["status"] == "pass"


# ----------------------------------------------------------------------------- at the defaults (slow)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["vector_ops", "scalar_ops", "simple_conv_net.handout"])
def test_the_projects_own_code_passes_the_command(target, capsys):
    assert cli.main([target]) == 0
    assert "score 100 / 100" in capsys.readouterr().out if target == "simple_conv_net.handout" else True


@pytest.mark.slow
def test_the_skeleton_scores_zero(capsys):
    assert cli.main([str(CORPUS / "skeleton"), "--rubric", "homework"]) == 1
    printed = capsys.readouterr().out
    assert "score 0 / 100" in printed and printed.count("returns None") >= 12


@pytest.mark.slow
def test_a_batch_of_twelve_at_the_defaults(tmp_path, capsys):
    """Twelve submissions of the corpus, each with one bug, graded as an instructor would."""
    folder = tmp_path / "class"
    make_class(folder)
    start = time.monotonic()
    assert cli.main(["--batch", str(folder), "--rubric", "homework"]) == 1
    seconds = time.monotonic() - start
    rows = (tmp_path / "class-results" / batch.GRADEBOOK).read_text().splitlines()
    assert len(rows) == 13
    print(f"12 submissions in {seconds:.0f} s")
    assert cli.main(["--batch", str(folder), "--rubric", "homework"]) == 1
    assert "skipped 12 already graded" in capsys.readouterr().out


@pytest.mark.slow
def test_report_outputs_of_a_full_run(tmp_path):
    path = compose("kernel_flipped", tmp_path / "student", name="simple_conv_net_func")
    assert cli.main([str(path), "--json", str(tmp_path / "r.json")]) == 1
    result = json.loads((tmp_path / "r.json").read_text())
    assert any("kernel is flipped" in d for d in result["functions"]["conv2d_vector"]["diagnoses"])
    assert result["functions"]["training"]["status"] in ("pass", "fail")
    assert report.epoch_answer(result).startswith("vector about")

"""python -m simple_conv_net.check with real child processes: isolation, the command line, batches.

check_corpus/isolation/misbehaving.py misbehaves differently in every function (an endless loop, a
segfault, sys.exit, os._exit, a runaway allocation, a print flood, deleting its working directory, a
process of its own left running, reading stdin, closing every file descriptor or sending stdout and
stderr to /dev/null, a FIFO, a junk file and forged records among its results); each must become that
function's status while the others are still checked. It is checked as a student's folder beside a
simple_conv_net.py and a random.py of the student's own, two ways: children forked by the fork server
in the sandbox (skipped where bubblewrap cannot start) and outside it; children started as fresh
interpreters (where no fork server can start) meet a few of its functions. A timeout counts from when
the child is ready to import the submission, so a loaded machine does not eat into it; the slow tests
run the command at its defaults. test_check_sandbox.py has the attempts to get out of the sandbox.
"""

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest

from simple_conv_net.check import batch, cli, grade, plans, report, rubric
from simple_conv_net.check.sandbox import KEEP

from check_helpers import CORPUS, SLOW_CLASS, compose, make_class, processes_with, require_bwrap, spawn_only

ISOLATION = CORPUS / "isolation"
QUICK_ARGS = ["--train-steps", "0", "--speed-repeats", "1", "--jobs", "2"]

# Seconds one call may take (--call-timeout): eight times what a call of a function that works takes here, so a
# loaded machine does not turn a pass into a timeout. Only conv2d_scalar hangs, and it starts first (scalar functions
# first, --jobs 2): the other functions are checked beside it, and the timeout adds little to the fixture's time.
TIMEOUT = 12
UNREADABLE = "its results could not be read"

# function -> (status, words in its diagnoses)
MISBEHAVING = {
    "conv2d_scalar": ("timeout", f"did not return within {TIMEOUT} s"),  # starts `sleep 600`, then an endless loop
    "pool2d_scalar": ("crashed", "SIGSEGV: segmentation fault"),     # reads address 0
    "relu_scalar": ("error", "the code called sys.exit(3)"),          # sys.exit, caught in the child
    "reshape_scalar": ("crashed", "exit code 4"),                     # os._exit, not catchable
    "conv2d_vector": ("pass", None),                                  # a print flood, then works
    "pool2d_vector": ("pass", None),                                  # deletes its working directory, then works
    "fc_layer_vector": ("pass", None),                                # closes every file descriptor, then works
    "relu_vector": ("pass", None),                                    # sends them to /dev/null, then works
    "reshape_vector": ("crashed", UNREADABLE),                        # a FIFO among its results
    "im2col": ("crashed", UNREADABLE),                                # a file that is no record
    "diff_mse": ("crashed", UNREADABLE),                              # records and a 'done' of its own
    "conv_weight2rows": ("error", "EOFError"),                        # input() with stdin closed
}
SHADOWS = {name: f'raise ImportError("the student\'s own {name} was imported")\n'
           for name in ("simple_conv_net.py", "random.py")}


# How the children start: forked by the fork server in the sandbox, or without it.
WAYS = ("bwrap", "fork")


def sandbox_option(way: str) -> list[str]:
    """The --sandbox option for children started ``way`` (the test skipped where the sandbox cannot start)."""
    if way == "bwrap":
        require_bwrap()
    return ["--sandbox", "bwrap" if way == "bwrap" else "none"]


def _leftover_marker(submission) -> str:
    """Words for the command line of the process misbehaving.py's conv2d_scalar leaves, put beside it."""
    marker = f"simple-conv-net-leftover-{uuid.uuid4().hex}"
    (submission / "leftover_marker").write_text(marker)
    return marker


@pytest.fixture(scope="module", params=WAYS)
def misbehaving(request, tmp_path_factory):
    """The report, score card and exit status of one run of the command on a folder holding misbehaving.py as
    simple_conv_net_func.py, and modules named like the checker's package and a standard module."""
    folder = tmp_path_factory.mktemp("misbehaving")
    submission = folder / "student"
    submission.mkdir()
    shutil.copy(ISOLATION / "misbehaving.py", submission / "simple_conv_net_func.py")
    for name, text in SHADOWS.items():
        (submission / name).write_text(text)
    marker = _leftover_marker(submission)
    before = {path.name: path.read_bytes() for path in submission.iterdir()}
    paths = {name: folder / name for name in ("report.json", "results.json", "feedback.md")}
    start = time.monotonic()
    status = cli.main([str(submission), "--call-timeout", str(TIMEOUT), "--memory-mb", "1024", *QUICK_ARGS,
                       *sandbox_option(request.param), "--json", str(paths["report.json"]),
                       "--gradescope", str(paths["results.json"]), "--feedback", str(paths["feedback.md"])])
    after = {path.name: path.read_bytes() for path in submission.iterdir()}
    return {"status": status, "seconds": time.monotonic() - start, "unchanged": after == before, "marker": marker,
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
    assert re.search(r"started pid \d+", printed)
    assert processes_with(misbehaving["marker"]) == []


def test_the_json_schema_and_the_other_outputs(misbehaving):
    result = misbehaving["report"]
    assert misbehaving["status"] == 1
    assert {"target", "form", "functions", "score", "max_score"} <= set(result) and result["form"] == "handout"
    for name, entry in result["functions"].items():
        assert entry["status"] in ("pass", "fail", "missing", "error", "timeout", "crashed", "not graded"), name
        assert isinstance(entry["seconds"], float) and isinstance(entry["diagnoses"], list)
        assert all(set(check) == {"name", "passed", "detail"} for check in entry["checks"])
    assert result["score"] == 80 and result["max_score"] == 100     # 2a, 2b and 2c pass
    assert misbehaving["gradescope"]["score"] == 80 and len(misbehaving["gradescope"]["tests"]) == 5
    assert "## `pool2d_scalar`: crashed" in misbehaving["feedback"]


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("file,status,words", [
    ("import_error.py", "error", "No module named 'numpy_extensions_of_my_own'"),
    ("syntax_error.py", "error", "SyntaxError"),
    ("import_hang.py", "timeout", "importing the module: did not finish in 4 s (--call-timeout)"),
])
def test_a_module_that_does_not_import(file, status, words, way, tmp_path):
    path = tmp_path / "report.json"
    assert cli.main([str(ISOLATION / file), "--call-timeout", "4", *QUICK_ARGS, *sandbox_option(way),
                     "--json", str(path)]) == 1
    functions = json.loads(path.read_text())["functions"]
    assert functions["conv2d_vector"]["status"] == status
    assert any(words in text for text in functions["conv2d_vector"]["diagnoses"])


SPAWNED = ("conv2d_scalar", "pool2d_scalar", "relu_scalar", "reshape_scalar")


def test_children_started_as_fresh_interpreters_end_alike(tmp_path, capsys):
    """Where no fork server can start, it is said once, and each child is a fresh interpreter: a hang (and the
    process it started), a segfault, sys.exit and os._exit end as they do when forked."""
    submission = tmp_path / "student"
    submission.mkdir()
    shutil.copy(ISOLATION / "misbehaving.py", submission)
    (submission / "simple_conv_net_func.py").write_text(f"from misbehaving import {', '.join(SPAWNED)}\n")
    marker = _leftover_marker(submission)
    path = tmp_path / "report.json"
    with spawn_only():
        cli.main([str(submission), "--call-timeout", "4", *QUICK_ARGS, "--sandbox", "none", "--json", str(path)])
    assert capsys.readouterr().err.count("fork server off: switched off by the test") == 1
    functions = json.loads(path.read_text())["functions"]
    for name in SPAWNED:
        status, words = MISBEHAVING[name]
        words = words and words.replace(f"{TIMEOUT} s", "4 s")
        assert functions[name]["status"] == status, (name, functions[name]["diagnoses"])
        assert not words or any(words in text for text in functions[name]["diagnoses"]), functions[name]
    assert processes_with(marker) == []


# Per-call ceiling and budget of the slow fixtures' run: python_loops' conv2d_scalar takes a fraction of a second a
# call on the small shapes (a few times that on a loaded machine) and over 6 s at the homework's [2, 1, 28, 28] on a
# quiet one (576000 multiply-adds in Python), so its verdict call is stopped at the ceiling.
SLOW_ARGS = ["--call-timeout", "4", "--timeout", "4", "--train-steps", "0", "--jobs", "2"]


def _conv_rubric(path) -> str:
    """A rubric of one item, conv2d_scalar with the homework's task 1 weights, to compare a score with its twin's."""
    task1 = next(item for item in json.loads((rubric.RUBRICS / "homework.json").read_text())["items"]
                 if "conv2d_scalar" in item["functions"])
    path.write_text(json.dumps({"items": [dict(task1, name="conv", points=10, functions=["conv2d_scalar"])]}))
    return str(path)


def test_slow_code_is_judged_by_what_ran_and_a_hang_by_its_ceiling(tmp_path, one_thread):
    """A correct Python-loop conv2d_scalar whose homework-shape call cannot return within the ceiling passes on what
    ran and scores what its fast twin does; a relu_vector that never returns is a timeout at its first call; no
    failing check or diagnosis comes from a call that did not return."""
    from check_helpers import load, run_in_process

    path = compose(("slow/python_loops", "slow/hang"), tmp_path / "student", name="simple_conv_net_func")
    rubric_path = _conv_rubric(tmp_path / "conv.json")
    out = tmp_path / "report.json"
    assert cli.main([str(path), "--only", "conv2d_scalar", "relu_vector", *SLOW_ARGS, "--rubric", rubric_path,
                     "--json", str(out)]) == 1
    result = json.loads(out.read_text())
    conv, relu = result["functions"]["conv2d_scalar"], result["functions"]["relu_vector"]
    assert conv["status"] == "pass" and all(c["passed"] for c in conv["checks"]), conv["checks"]
    assert any(c["name"].startswith("values small random") for c in conv["checks"])
    stopped = {item["name"]: item["detail"] for item in conv["not_checked"]}
    assert stopped.get("random N=2", "").startswith("not checked: did not return within 4 s"), stopped
    ran = {c["name"].split(" ", 1)[1] for c in conv["checks"] if c["name"].startswith("values ")}
    assert not ran & set(stopped), ran & set(stopped)
    assert relu["status"] == "timeout" and relu["checks"] == []
    assert relu["diagnoses"][0].startswith("timeout: the first call (small random N=4) did not return within 4 s"), \
        relu["diagnoses"]
    twin = run_in_process(load(CORPUS / "good.py"), "conv2d_scalar")
    fast = rubric.score(rubric.load(rubric_path), {"conv2d_scalar": report.function_entry(twin)})
    assert result["score"] == fast["score"] == 10, (result["rubric"], fast)


def test_only_one_function_prints_its_diagnosis(tmp_path, capsys):
    """A student's loop: --only conv2d_vector checks that function alone and says why it fails."""
    path = compose("kernel_flipped", tmp_path / "student", name="simple_conv_net_func")
    start = time.monotonic()
    assert cli.main([str(path), "--only", "conv2d_vector"]) == 1
    seconds = time.monotonic() - start
    printed = capsys.readouterr()
    assert "the kernel is flipped" in printed.out and "conv2d_vector: fail" in printed.out
    assert "pool2d_vector" not in printed.out.split("rubric")[0]
    assert "simple_conv_net_func.py: conv2d_vector: fail in" in printed.err    # the progress line, off a terminal
    print(f"--only conv2d_vector in {seconds:.1f} s")


def test_missing_mnist_is_a_grading_error(tmp_path, capsys):
    """No MNIST where --data-dir points: task 3 is not graded (no score, its cell says why), the batch exits with 2,
    nothing suggests a flag the checker lacks, and the next run grades the submission again."""
    folder, empty = tmp_path / "class", tmp_path / "no-data"
    folder.mkdir()
    empty.mkdir()
    (folder / "bob.py").write_text("import torch\n\n\ndef relu_vector(a, device):\n    return a.clamp(min=0)\n")
    args = ["--batch", str(folder), "--speed-repeats", "1", "--jobs", "2", "--data-dir", str(empty)]
    assert cli.main(args) == 2
    out = tmp_path / "class-results"
    rows = list(csv.DictReader(io.StringIO((out / batch.GRADEBOOK).read_text())))
    cell = rows[0]["Task 3: training and timing"]
    assert cell.startswith("not graded: training: task 3 cannot be run: MNIST files not found in") and \
        str(empty) in cell and "\n" not in cell, cell
    reported = json.loads((out / "bob" / batch.REPORT).read_text())
    assert reported["grading_errors"] and not reported["graded"]
    (task3,) = [item for item in reported["rubric"]["items"] if item["name"].startswith("Task 3")]
    assert task3["score"] is None and task3["graded"] is False
    assert reported["score"] == sum(item["score"] for item in reported["rubric"]["items"] if item["graded"])
    assert "use --download" not in json.dumps(reported) and "python train.py --download" in cell
    capsys.readouterr()
    assert cli.main(args) == 2
    assert "graded 1 submission(s), skipped 0 already graded" in capsys.readouterr().out


def test_a_checker_error_exits_2(tmp_path, monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in the checker")

    monkeypatch.setattr(cli, "check", broken)
    assert cli.main([str(ISOLATION / "sleeper.py")]) == 2
    assert "grading error: the checker failed (ZeroDivisionError: a bug in the checker)" in capsys.readouterr().err


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
    """Four submissions: a file that defines none of the names (unusable: its row says so, the batch goes on),
    a file, a folder whose module imports a sibling (beside a package of its own named like the checker's), and
    a file named like the checker's own package; a second run skips them all, a changed file is graded again."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    relu = "def relu_vector(a, device):\n    return a.clamp(min=0)\n"
    (folder / "alice.py").write_text("x = 1\n")
    (folder / "bob.py").write_text("import torch\n\n" + relu)
    (folder / "carol").mkdir()
    (folder / "carol" / "helpers.py").write_text("import torch\n\n\n" + relu.replace("relu_vector", "relu"))
    (folder / "carol" / "simple_conv_net_func.py").write_text("from helpers import relu as relu_vector\n")
    (folder / "carol" / "simple_conv_net").mkdir()      # a package of carol's own named like the checker's
    (folder / "carol" / "simple_conv_net" / "__init__.py").write_text('raise ImportError("carol\'s own package")\n')
    (folder / "simple_conv_net.py").write_text("def relu_vector(a, device):\n    a[a < 0] = 0\n    return a\n")
    names = ("alice", "bob", "carol", "simple_conv_net")
    args = ["--batch", str(folder), *QUICK_ARGS, "--rubric", "homework"]
    assert cli.main(args) == 1
    out = tmp_path / "submissions-results"
    rows = list(csv.reader(io.StringIO((out / batch.GRADEBOOK).read_text())))
    assert rows[0][:4] == ["submission", "score", "max_score", "Task 1: scalar forward passes"]
    assert [row[0] for row in rows[1:]] == list(names)
    assert rows[1][-1].startswith("unusable: target") and "defines none of the handout's functions" in rows[1][-1]
    for name in names:
        assert {p.name for p in (out / name).iterdir()} == {batch.REPORT, batch.FEEDBACK, batch.GRADESCOPE}
    reports = {name: json.loads((out / name / batch.REPORT).read_text()) for name in names}
    assert reports["alice"]["functions"] == {} and reports["alice"]["score"] == 0
    assert reports["bob"]["functions"]["relu_vector"]["status"] == "pass"
    assert reports["carol"]["functions"]["relu_vector"]["status"] == "pass"
    changed = reports["simple_conv_net"]["functions"]["relu_vector"]
    assert changed["status"] == "fail" and any("changed by the call" in d for d in changed["diagnoses"])
    capsys.readouterr()
    assert cli.main(args) == 1
    assert "graded 0 submission(s), skipped 4 already graded" in capsys.readouterr().out
    (folder / "simple_conv_net.py").write_text("import torch\n\n" + relu)
    cli.main(args)
    assert "graded 1 submission(s), skipped 3 already graded" in capsys.readouterr().out
    assert json.loads((out / "simple_conv_net" / batch.REPORT).read_text())["functions"]["relu_vector"]["status"] == \
        "pass"


def _fake_report(target) -> dict:
    entry = {"status": "pass", "checks": [{"name": "values a", "passed": True, "detail": ""}], "diagnoses": [],
             "notes": [], "seconds": 1.0, "signature": None, "output": "", "timing": {}}
    return {"target": target.text, "form": "handout", "functions": {"relu_vector": entry}, "epoch": {}, "notes": [],
            "seconds": 1.0, "settings": {}, "fingerprint": target.fingerprint()}


def test_a_checker_error_is_that_submissions_row(tmp_path, monkeypatch):
    """An exception in the checker while it grades one submission is that submission's row, with the traceback's
    last lines in its feedback, and a grading error: none of its items has a score (their cells say why) and the
    batch exits with status 2; the others are graded."""
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("erin", "frank"):
        (folder / f"{name}.py").write_text("def relu_vector(a, device):\n    return a\n")

    def check(target, options, rubric, progress=None):
        if target.name == "erin.py":
            raise ZeroDivisionError("a bug in the checker")
        return _fake_report(target)

    monkeypatch.setattr(batch, "check", check)
    options = grade.Options(plans.Settings(train_steps=0))
    assert batch.grade_batch(folder, None, options, None, False) == 2
    out = tmp_path / "class-results"
    rows = list(csv.reader(io.StringIO((out / batch.GRADEBOOK).read_text())))
    assert [row[0] for row in rows[1:]] == ["erin", "frank"]
    assert rows[1][-1].startswith("checker error: ZeroDivisionError: a bug in the checker")
    assert all(cell.startswith("not graded: checker error: ZeroDivisionError") for cell in rows[1][3:-1])
    assert json.loads((out / "erin" / batch.REPORT).read_text())["grading_errors"][0].startswith("checker error")
    feedback = (out / "erin" / batch.FEEDBACK).read_text()
    assert "raise ZeroDivisionError" in feedback and "not a fault of the submission" in feedback
    assert json.loads((out / "frank" / batch.REPORT).read_text())["functions"]["relu_vector"]["status"] == "pass"


def test_two_submissions_of_one_name_are_refused(tmp_path, capsys):
    """alice/ and alice.py would share alice's reports and gradebook row: refused before any grading."""
    folder = tmp_path / "class"
    (folder / "alice").mkdir(parents=True)
    (folder / "alice" / "simple_conv_net_func.py").write_text("def relu_vector(a, device):\n    return a\n")
    (folder / "alice.py").write_text("def relu_vector(a, device):\n    return a\n")
    (folder / "Bob.py").write_text("def relu_vector(a, device):\n    return a\n")
    (folder / "bob").mkdir()
    assert cli.main(["--batch", str(folder), *QUICK_ARGS]) == 2
    error = capsys.readouterr().err
    assert "alice/ and alice.py" in error and "Bob.py and bob/" in error and "rename" in error
    assert not (tmp_path / "class-results").exists()


@pytest.mark.parametrize("option", ["--timeout", "--memory-mb"])
def test_timeout_and_memory_take_finite_numbers(option, capsys):
    for value in ("inf", "nan", "0", "-1", "soon"):
        with pytest.raises(SystemExit) as exit_:
            cli.parse_args(["x.py", option, value])
        assert exit_.value.code == 2
    error = capsys.readouterr().err
    assert f"{option}: expected a positive" in error and "got inf" in error.replace("'", "")


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.1)
    return found


def _named(name: str) -> list[int]:
    """The live processes called ``name`` (/proc/PID/comm)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/comm") as comm:
                if comm.read().strip() == name and not _gone(int(entry)):
                    found.append(int(entry))
        except (OSError, ValueError):
            continue
    return found


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as status:
            return "zombie" in status.read().lower()
    except FileNotFoundError:
        return True


@pytest.mark.parametrize("signal_,sandbox", [(signal.SIGTERM, "auto"), (signal.SIGKILL, "bwrap"),
                                             (signal.SIGKILL, "none")], ids=["SIGTERM", "SIGKILL-bwrap", "SIGKILL"])
def test_a_stopped_checker_leaves_no_child_running(signal_, sandbox, tmp_path):
    """The checker is stopped while a child sleeps in candidate code: with SIGTERM it stops its children (and the
    fork server) and removes their folders before it ends; with SIGKILL it cannot, but each child dies with it
    (PDEATHSIG; in the sandbox bubblewrap's --die-with-parent). The child names its process, to be found here."""
    if sandbox == "bwrap":
        require_bwrap()
    name = f"scn-sleep-{uuid.uuid4().hex[:5]}"
    submission = tmp_path / "student"
    submission.mkdir()
    shutil.copy(ISOLATION / "sleeper.py", submission / "simple_conv_net_func.py")
    (submission / "sleeper_name").write_text(name)
    scratch = tmp_path / "tmp"      # the checker's temporary folders
    scratch.mkdir()
    command = [sys.executable, "-m", "simple_conv_net.check", str(submission), "--train-steps", "0", "--jobs", "1",
               "--sandbox", sandbox]
    checker = subprocess.Popen(command, env=dict(os.environ, TMPDIR=str(scratch)), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    try:
        pid, = _wait_for(lambda: _named(name), 120, "the child to start sleeping")
        checker.send_signal(signal_)
        checker.wait(timeout=60)
        _wait_for(lambda: _gone(pid), 10, f"the child {pid} to end")
        if signal_ == signal.SIGTERM:
            assert checker.returncode == 128 + signal.SIGTERM, checker.stderr.read()
            assert [path for path in scratch.iterdir() if path.name.startswith("simple-conv-net-check-")] == []
    finally:
        checker.kill()
        checker.wait()


# ----------------------------------------------------------------------------- at the defaults (slow)


@pytest.mark.slow
@pytest.mark.parametrize("target,score", [("vector_ops", "9 / 9"), ("scalar_ops", "9 / 9"),
                                          ("simple_conv_net.handout", "100 / 100")])
def test_the_projects_own_code_passes_the_command(target, score, capsys):
    """Every function passes, and earns its points: a point each and one for training in the functional form,
    the homework's 100 in the handout form."""
    assert cli.main([target]) == 0
    assert f"score {score}" in capsys.readouterr().out


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
def test_correct_but_slow_code_scores_as_its_fast_twin(tmp_path):
    """At the defaults: scalar functions as Python loops over single entries and vector functions looping over the
    batch pass every function and score, item by item, what good.py does; what did not fit the budget is listed as
    not checked, and nothing failing comes from it."""
    slow = compose(("slow/python_loops", "slow/batch_loop"), tmp_path / "slow", name="simple_conv_net_func")
    fast = compose((), tmp_path / "fast", name="simple_conv_net_func")
    reports = {}
    for name, path in (("slow", slow), ("fast", fast)):
        start = time.monotonic()
        assert cli.main([str(path.parent), "--rubric", "homework", "--json", str(tmp_path / f"{name}.json")]) == 0
        reports[name] = json.loads((tmp_path / f"{name}.json").read_text())
        print(f"{name}: {time.monotonic() - start:.0f} s")
    assert all(entry["status"] == "pass" for entry in reports["slow"]["functions"].values())
    assert [item["score"] for item in reports["slow"]["rubric"]["items"]] == \
        [item["score"] for item in reports["fast"]["rubric"]["items"]]
    assert reports["slow"]["rubric"]["sum"] == reports["fast"]["rubric"]["sum"] == 110
    assert any(entry["not_checked"] for entry in reports["slow"]["functions"].values())


@pytest.mark.slow
def test_a_batch_of_twelve_with_python_loops(tmp_path, capsys):
    """The slow class (check_helpers.SLOW_CLASS: four submissions with Python-loop scalar forms, one of them with
    batch-loop vector forms too) at the defaults; its time is printed (issue 18's target: 15 minutes here)."""
    folder = tmp_path / "class"
    make_class(folder, SLOW_CLASS)
    start = time.monotonic()
    assert cli.main(["--batch", str(folder), "--rubric", "homework"]) == 1
    print(f"12 submissions, four with Python loops, in {time.monotonic() - start:.0f} s")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "class-results" / batch.GRADEBOOK).read_text())))
    slow = [row for row in rows if row["submission"] in ("student10",)]     # python_loops + batch_loop: all correct
    assert slow and slow[0]["score"] == "100.0" and slow[0]["not passing"] == ""


@pytest.mark.slow
def test_report_outputs_of_a_full_run(tmp_path):
    path = compose("kernel_flipped", tmp_path / "student", name="simple_conv_net_func")
    assert cli.main([str(path), "--json", str(tmp_path / "r.json")]) == 1
    result = json.loads((tmp_path / "r.json").read_text())
    assert any("kernel is flipped" in d for d in result["functions"]["conv2d_vector"]["diagnoses"])
    assert result["functions"]["training"]["status"] in ("pass", "fail")
    assert report.epoch_answer(result).startswith("vector about")

"""--sandbox bwrap, and the fork server the children start from.

check_corpus/isolation/hostile.py tries, one attempt per function, to open a TCP connection to a
listener of the test's on 127.0.0.1, to read a file in the test's $HOME and the submission where it was
handed in, to read a variable of the checker's environment, to see the other children's folders, to
write outside its folder (beside the test, into the Python environment, beside the submission), to find
and kill the checker's process, to signal any other process (the other children's among them), and to
leave a process running after the check. Under the sandbox each attempt must fail inside the child (the
function prints what stopped it, then computes its layer: pass), and nothing must reach the outside.
Skipped, with the reason, where bubblewrap is missing or cannot start; run both as root (the children
drop to the real uid 65534) and on the path of any other user (bubblewrap's user namespace, the child's
own inside it), which root can take too.
"""

import json
import os
import shutil
import signal
import socket
import sys
import uuid

import pytest
import torch

from simple_conv_net.check import bubblewrap, cli, forkserver, sandbox, servers
from simple_conv_net.check.targets import resolve

from check_helpers import CORPUS, processes_with, require_bwrap

ISOLATION = CORPUS / "isolation"
QUICK_ARGS = ["--train-steps", "0", "--speed-repeats", "1", "--jobs", "2", "--timeout", "30", "--batch-sizes", "1", "2",
              "--scalar-batch-sizes", "1"]

# function -> the attempts it prints as blocked
ATTEMPTS = {
    "relu_vector": ["a TCP connection to ('127.0.0.1'"],
    "relu_scalar": ["reading a file in the user's home", "reading the submission where it was handed in",
                    "the checker's environment", "the other children's folders"],
    "pool2d_vector": ["writing a file outside its folder", "writing into the Python environment",
                      "writing beside the submission"],
    "reshape_vector": ["finding the checker's process", "killing the checker's process"],
    "fc_layer_vector": ["finding another process to signal", "killing every other process"],
    "reshape_scalar": [],       # it starts a process to outlive the check: looked for afterwards
}


def _accepted(listener: socket.socket) -> int:
    listener.setblocking(False)
    count = 0
    while True:
        try:
            listener.accept()[0].close()
        except BlockingIOError:
            return count
        count += 1


def _as_user_1000(command):
    """bubblewrap's command for a user other than root, run by root as uid 1000 (root's own uid 0 may not be
    mapped into a namespace without CAP_SETFCAP, which a user's namespaces never need: their uid is not 0)."""
    def wrapped(*args, **kwargs):
        argv = command(*args, **kwargs)
        at = argv.index("--unshare-user") + 1
        return argv[:at] + ["--uid", "1000", "--gid", "1000"] + argv[at:]
    return wrapped


@pytest.fixture(scope="module", params=[True, False], ids=["as root", "as another user"])
def hostile(request, tmp_path_factory):
    """One run of the command under --sandbox bwrap on hostile.py, with what it aims at; what got out."""
    require_bwrap()
    if request.param and not bubblewrap.privileged():
        pytest.skip("only root can take root's path")
    folder = tmp_path_factory.mktemp("hostile")
    home, submission = folder / "home", folder / "student"
    home.mkdir()
    submission.mkdir()
    (home / "secret.txt").write_text("the instructor's secret\n")
    shutil.copy(ISOLATION / "hostile.py", submission / "simple_conv_net_func.py")
    listener = socket.create_server(("127.0.0.1", 0))
    marker = f"simple-conv-net-hostile-{uuid.uuid4().hex}"
    (submission / "aims.json").write_text(json.dumps({
        "port": listener.getsockname()[1], "secret": str(home / "secret.txt"), "checker": os.getpid(),
        "submission": str(submission / "simple_conv_net_func.py"), "outside": str(folder / "outside.txt"),
        "variable": "SIMPLE_CONV_NET_TEST_TOKEN", "marker": marker}))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HOME", str(home))
        patch.setenv("SIMPLE_CONV_NET_TEST_TOKEN", "a token of the instructor's")
        emulated = request.param != bubblewrap.privileged()     # root taking a user's path: a server of its own
        if emulated:
            patch.setattr(bubblewrap, "privileged", lambda: False)
            patch.setattr(bubblewrap, "command", _as_user_1000(bubblewrap.command))
            patch.setattr(servers, "_SERVERS", {})
        status = cli.main([str(submission), *QUICK_ARGS, "--sandbox", "bwrap", "--json", str(folder / "r.json")])
        if emulated:
            servers.stop_servers()
    found = {"status": status, "report": json.loads((folder / "r.json").read_text()), "accepted": _accepted(listener),
             "outside": (folder / "outside.txt").exists(), "leftovers": processes_with(marker),
             "submission": sorted(path.name for path in submission.iterdir()),
             "project": os.path.exists(os.path.join(os.path.dirname(torch.__file__), "hostile.txt"))}
    listener.close()
    return found


@pytest.mark.parametrize("function", ATTEMPTS)
def test_each_attempt_fails_inside_its_child(hostile, function):
    entry = hostile["report"]["functions"][function]
    assert entry["status"] == "pass", (entry["diagnoses"], entry["output"])
    for attempt in ATTEMPTS[function]:
        assert f"blocked: {attempt}" in entry["output"], entry["output"]
    assert "escaped" not in entry["output"]


def test_the_others_are_reported_as_usual(hostile):
    functions = hostile["report"]["functions"]
    assert {name for name, entry in functions.items() if entry["status"] == "missing"} == \
        set(functions) - set(ATTEMPTS)


def test_nothing_got_out(hostile):
    assert hostile["accepted"] == 0                      # no connection reached the listener
    assert not hostile["outside"] and not hostile["project"]
    assert hostile["submission"] == ["aims.json", "simple_conv_net_func.py"]
    assert hostile["leftovers"] == []                    # the process it left died with its sandbox


def test_each_child_takes_its_thread_count(tmp_path):
    """A forked child sets its own thread count (the server, started with one, started no pool): one job gets
    all of the machine's CPUs."""
    (tmp_path / "threads.py").write_text("import torch\n\n\ndef relu_vector(a, device):\n"
                                         "    print('threads', torch.get_num_threads(), flush=True)\n"
                                         "    return a.clamp(min=0)\n")
    path = tmp_path / "r.json"
    cli.main([str(tmp_path / "threads.py"), *QUICK_ARGS, "--jobs", "1", "--sandbox", "none", "--json", str(path)])
    assert f"threads {os.cpu_count()}\n" in json.loads(path.read_text())["functions"]["relu_vector"]["output"]


def test_the_command_starts_the_server_early_for_a_file_a_folder_or_a_batch(tmp_path):
    """python -m simple_conv_net.check starts the server while it imports torch, when it will need one in the view
    every file target shares; a module target (its own view), --help or no target, no."""
    for argv in ([], ["vector_ops"], ["no_such_thing.py"], [str(tmp_path), "--help"],
                 [str(tmp_path), "--sandbox", "sideways"], ["autograder", "--rubric", "homework"]):
        assert servers.start_early(argv) is None, argv
    (tmp_path / "relu.py").write_text("def relu_vector(a, device):\n    return a\n")
    thread = servers.start_early([str(tmp_path / "relu.py"), "--sandbox", "none"])
    thread.join()
    assert servers.server_for("none").alive()


def test_sandbox_bwrap_where_it_cannot_start_is_a_usage_error(monkeypatch, tmp_path, capsys):
    """--sandbox bwrap never runs a child without the sandbox: exit status 2 and why; auto says it in one line."""
    monkeypatch.setattr(bubblewrap, "unavailable", lambda: "bwrap is not installed (test)")
    monkeypatch.setattr(servers, "_UNUSABLE", {})
    target = str(ISOLATION / "sleeper.py")
    assert cli.main([target, "--sandbox", "bwrap", *QUICK_ARGS]) == 2
    assert "--sandbox bwrap: bwrap is not installed (test)" in capsys.readouterr().err
    (tmp_path / "relu.py").write_text("def relu_vector(a, device):\n    return a.clamp(min=0)\n")
    assert cli.main([str(tmp_path / "relu.py"), *QUICK_ARGS]) == 1
    err = capsys.readouterr().err
    assert err.count("sandbox off: bwrap is not installed (test)") == 1


def test_the_server_forks_from_one_thread_and_takes_its_children_when_it_stops(tmp_path):
    """The server has started no thread (a fork would lose it); stopped, it ends, and its children with it: a
    child waiting for its secret is reported killed."""
    server = forkserver.Server(tmp_path)
    server.start(servers.environment(1), servers.STARTUP)
    assert len(os.listdir(f"/proc/{server.process.pid}/task")) == 1
    folder = tmp_path / "child"
    resolve(str(ISOLATION / "sleeper.py")).copy_into(folder / "work")
    (folder / "results").mkdir()
    secret, secret_write = os.pipe()     # never written nor closed: the child waits
    ready, ready_write = os.pipe()
    with open(os.devnull, "rb") as request:
        child = server.spawn(folder, sandbox._limits(sandbox.Limits()),
                             {"request": request.fileno(), "secret": secret, "ready": ready_write},
                             servers.environment(1))
    server.stop()
    assert child.wait() == -signal.SIGKILL and server.process.returncode is not None
    child.close()
    for fd in (secret, secret_write, ready, ready_write):
        os.close(fd)


def test_a_python_environment_under_tmp_is_named_as_why_the_sandbox_cannot_start(monkeypatch):
    """The sandbox's private /tmp would hide a virtual environment made under /tmp: the reason says so, not an
    execvp error from inside bubblewrap."""
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/bwrap")
    monkeypatch.setattr(sys, "prefix", "/tmp/checkout/.venv")
    reason = bubblewrap.unavailable()
    assert reason is not None and "under /tmp (/tmp/checkout/.venv)" in reason and "outside /tmp" in reason

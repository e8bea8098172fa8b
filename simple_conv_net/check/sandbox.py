"""Run candidate code in a child process that cannot take the checker down with it.

One call of :func:`run_child` is one child, started in one of two ways, and treated alike here:

- forked by the fork server (:mod:`.forkserver`), a process of this checker's that has imported
  torch and the child's modules once and never runs candidate code: a child is ready in tens of
  milliseconds instead of the seconds an interpreter takes to import torch. One server per checker
  process (and per sandbox view), started by the first child that needs it or early, stopped at
  exit (:mod:`.servers`);
- or, where no server can start (not Linux, or it failed: said once on stderr), as
  ``python -P -m simple_conv_net.check.child``, a fresh interpreter started with :mod:`subprocess`.

Never multiprocessing, whose results come back as unrestricted pickles and whose children share
the parent's stdout. Either way the child gets

- its own session and process group, so a timeout kills it and everything it started (SIGKILL
  to the group), and it dies with the checker (PR_SET_PDEATHSIG, see child; the server, too);
- a neutral working directory at start, so no file of the submission can stand in for the
  checker's own modules (a student's simple_conv_net.py, random.py or torch.py); it moves into
  its working directory, a fresh temporary folder holding a copy of the submission, once the
  checker's modules are imported;
- a wall-clock limit (here), counted from when the child says it is ready to import the
  submission (Python and torch started; their start-up has its own, generous limit, STARTUP, so
  a loaded machine does not eat into its time), with, when the caller gives a pace, a deadline
  for each call (watched as the child's call records appear; see :func:`run_child`), and
  resource limits it sets on itself before any candidate code runs (child.lower_limits):
  RLIMIT_DATA for memory (RLIMIT_AS would also count the address space libraries merely
  reserve: CUDA reserves far more than any limit), RLIMIT_CPU, RLIMIT_FSIZE and no core files;
  and its own thread counts (child.use_threads);
- stdin closed; stdout and stderr on pipes of its own that this process drains as they fill,
  keeping the first and last KEEP bytes of each: a print flood neither blocks the child nor fills
  a disk. A child that closes them is still waited for, until it exits or its time is up.

Two file descriptors carry what the child must not leave lying around, both closed before any
candidate code runs: the request (an unlinked temporary file) and the secret that signs its
records (a pipe). Results come back as files the child writes one by one into a folder beside
its working directory, read here by :func:`.records.read`: regular files only, signed, of the
shapes the child writes, loaded with ``torch.load(weights_only=True)`` (tensors, numbers,
strings, lists and dicts, never objects). Anything else there makes the run "crashed: its
results could not be read".

``Limits.sandbox`` says whether the fork server, and so every child, runs in the sandbox
(:mod:`.bubblewrap`): "bwrap" (or an error, :class:`.servers.SandboxError`, where it cannot),
"none", or "auto", the default: the sandbox where bubblewrap works, else none, with one line on
stderr saying so. With it, a child has no network, no view of the user's files or the checker's
(other children's folders, the submissions, the results: a training child gets a copy of the MNIST
files in its folder), only its own folder writable, its own PID, IPC, mount and user namespaces,
as uid 65534 with no capabilities. Without it, this is isolation from accidents, not a security
sandbox: the child runs as the same user, can read and write whatever that user can, can reach the
network, and a process it starts in a new session escapes the group kill. Either way code that
reads the child's own memory can forge its records (see records).
"""

from __future__ import annotations

import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .. import data
from . import child, records
from .forkserver import Server, ServerError, kill_group
from .servers import SANDBOXES, STARTUP, environment, server_for
from .targets import Target

KEEP = 4096           # bytes kept from each end of stdout and stderr
GRACE = 2.0           # seconds a child that exited may still hold its pipes open (through its own children)

SIGNALS = {
    signal.SIGSEGV: "segmentation fault",
    signal.SIGBUS: "bus error",
    signal.SIGABRT: "aborted",
    signal.SIGFPE: "floating-point exception",
    signal.SIGILL: "illegal instruction",
    signal.SIGXCPU: "CPU time limit reached",
    signal.SIGXFSZ: "file size limit reached",
    signal.SIGKILL: "killed from outside the checker (by the kernel's out-of-memory killer, perhaps)",
}


@dataclass(frozen=True)
class Limits:
    timeout: float = 60.0       # wall-clock seconds for the whole child, once it is ready
    memory_mb: int = 4096       # RLIMIT_DATA
    threads: int = 1            # torch / OpenMP / numba threads in the child
    file_mb: int = 1024         # RLIMIT_FSIZE: the largest file the child may write
    sandbox: str = "auto"       # one of SANDBOXES (see the module doc)

    def __post_init__(self) -> None:
        if not (0 < self.timeout < float("inf")):
            raise ValueError(f"Limits: expected a finite timeout > 0, got {self.timeout}")
        if self.sandbox not in SANDBOXES:
            raise ValueError(f"Limits: expected a sandbox among {', '.join(SANDBOXES)}, got {self.sandbox!r}")

    @property
    def cpu_seconds(self) -> int:
        return int(self.timeout * max(self.threads, 1)) + 10


class Capture:
    """The first and last KEEP bytes of a stream, and how many bytes it had."""

    def __init__(self) -> None:
        self.head, self.tail, self.total = bytearray(), bytearray(), 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = KEEP - len(self.head)
        self.head += chunk[:room]
        self.tail = (self.tail + chunk[room:])[-KEEP:] if len(chunk) > room else self.tail

    def text(self) -> str:
        head = self.head.decode(errors="replace")
        if self.total <= 2 * KEEP:
            return head + self.tail.decode(errors="replace")
        left_out = self.total - len(self.head) - len(self.tail)
        return f"{head}\n[... {left_out} bytes left out ...]\n{self.tail.decode(errors='replace')}"


@dataclass
class ChildRun:
    outcome: str                 # "finished", "timeout", "crashed" or "halted" (its pace stopped it between calls)
    reason: str | None
    records: dict = field(default_factory=dict)   # record name -> what the child wrote
    stdout: str = ""
    stderr: str = ""
    seconds: float = 0.0
    ready_seconds: float | None = None   # when it was ready to import the submission (None: it never was)
    call_timeout: bool = False           # the timeout was a call's own deadline (its pace), not the child's


LIVE: set = set()           # the children running now (see stop_all)
STOPPING = threading.Event()   # set by stop_all: start no more children, and no more native training


def stop_all() -> None:
    """Kill every child running now, with whatever it started, and start no more (the checker is stopped)."""
    STOPPING.set()
    for process in list(LIVE):
        process.kill()


@dataclass
class Drained:
    """What the child printed, and whether this process had to kill it."""

    stdout: Capture
    stderr: Capture
    timed_out: bool = False     # it was still running when its time was up
    ready: bool = False         # it said it was ready to import the submission
    ready_at: float | None = None
    calls_done: int = 0         # the call records in its results folder, counted by a pace
    call_timeout: bool = False  # stopped at a call's own deadline
    halted: bool = False        # stopped between calls: its pace said so


class _Spawned:
    """A child started as a fresh interpreter, as :func:`_drain` sees a process (see forkserver.ServedChild)."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.process, self.stdout, self.stderr = process, process.stdout, process.stderr
        try:      # readable once the process has ended (Linux 5.3+), for a selector; None: poll() is looked at
            self.exit_fd = os.pidfd_open(process.pid)
        except (AttributeError, OSError):
            self.exit_fd = None

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    def poll(self) -> int | None:
        return self.process.poll()

    def kill(self) -> None:
        kill_group(self.process.pid)

    def wait(self) -> int:
        return self.process.wait()

    def close(self) -> None:
        self.stdout.close()
        self.stderr.close()
        if self.exit_fd is not None:
            os.close(self.exit_fd)


def calls_done(results: Path, known: int) -> int:
    """How many call records (call-000.pt, call-001.pt, ...) the child has written in a row, from ``known`` on."""
    while (results / f"call-{known:03d}.pt").exists():
        known += 1
    return known


class _Paced:
    """A pace's side of :func:`_drain`: the deadline of the call the child is running, asked of ``pace(done,
    now)`` when the child is ready and whenever another call record appears (None: stop the child now)."""

    POLL = 0.05   # seconds between looks at the results folder

    def __init__(self, pace, results: Path) -> None:
        self.pace, self.results, self.deadline = pace, results, float("inf")

    def update(self, drained: Drained, now: float, ready_now: bool = False) -> bool:
        """Ask the pace again if the child just got ready or wrote another record; False: stop the child."""
        done = calls_done(self.results, drained.calls_done)
        if ready_now or done != drained.calls_done:
            drained.calls_done = done
            deadline = self.pace(done, now)
            if deadline is None:
                drained.halted = True
                return False
            self.deadline = deadline
        return True


_EXIT = "exit"      # a selector key's data: the process's exit_fd


def _drain(process, ready_pipe: int, timeout: float, paced: _Paced | None = None) -> Drained:
    """Read the child's stdout and stderr, and its ready signal, until it exits (its pipes closed or not) or its
    time is up: STARTUP to be ready, then ``timeout``, and each call's own deadline when ``paced``. Its end is
    seen as it comes (``process.exit_fd``), not at the next look."""
    drained = Drained(Capture(), Capture())
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ, drained.stdout)
    selector.register(process.stderr, selectors.EVENT_READ, drained.stderr)
    selector.register(ready_pipe, selectors.EVENT_READ, None)
    if process.exit_fd is not None:
        selector.register(process.exit_fd, selectors.EVENT_READ, _EXIT)
    deadline, exited = time.monotonic() + STARTUP, False
    while True:
        if not exited and process.poll() is not None:
            exited, deadline = True, min(deadline, time.monotonic() + GRACE)
            if process.exit_fd is not None:
                selector.unregister(process.exit_fd)
        if exited and not selector.get_map():
            break
        now = time.monotonic()
        if paced and drained.ready and not exited and not paced.update(drained, now):
            break
        call_deadline = paced.deadline if paced and drained.ready and not exited else float("inf")
        remaining = min(deadline, call_deadline) - now
        if remaining <= 0:
            drained.timed_out = not exited
            drained.call_timeout = drained.timed_out and call_deadline < deadline
            break
        poll = min(remaining, _Paced.POLL if paced else 0.25)
        if not selector.get_map():    # both pipes closed, the child still running: wait for it to exit
            time.sleep(poll)
            continue
        for key, _ in selector.select(timeout=poll):
            if key.data is _EXIT:      # the process has ended: poll() says so at the top of the loop
                continue
            chunk = os.read(key.fd, 1 << 16)
            if not chunk:
                selector.unregister(key.fileobj)
            elif key.data is not None:
                key.data.add(chunk)
            elif not drained.ready:
                drained.ready, drained.ready_at = True, time.monotonic()
                deadline = drained.ready_at + timeout
                if paced:
                    paced.update(drained, drained.ready_at, ready_now=True)
        if drained.halted:
            break
    selector.close()
    process.kill()  # a timeout, or whatever the child left running
    process.wait()
    return drained


def _crash_reason(returncode: int, stderr: str) -> str:
    """Why a child that ended by itself did not finish: its signal, or its exit code and last line on stderr."""
    if returncode < 0:
        number = -returncode
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else f"signal {number}"
        return f"killed by {name}: {SIGNALS.get(number, 'a signal')}"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = f"its last line on stderr: {lines[-1][:300]!r}" if lines else "it wrote nothing on stderr"
    return f"the process ended with exit code {returncode} before finishing its calls; {said}"


def _limits(limits: Limits) -> dict:
    """The fields of child.Setup that ``limits`` gives."""
    return {"memory_mb": limits.memory_mb, "cpu_seconds": limits.cpu_seconds, "file_mb": limits.file_mb,
            "threads": limits.threads}


def _spawn(limits: Limits, root: Path, fds: dict) -> _Spawned:
    """``python -P -m simple_conv_net.check.child ...``: -P (Python 3.11+) keeps the working directory off
    sys.path, which the neutral start directory does on older ones."""
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    setup = child.Setup(work=str(root / "work"), results=str(root / "results"), request_fd=fds["request"],
                        secret_fd=fds["secret"], ready_fd=fds["ready"], parent=os.getpid(), **_limits(limits))
    return _Spawned(subprocess.Popen([sys.executable, *safe_path, "-m", "simple_conv_net.check.child",
                                      *child.arguments(setup)],
                                     cwd=root, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, start_new_session=True, pass_fds=list(fds.values()),
                                     env=environment(limits.threads)))


def _pipe_holding(data: bytes) -> int:
    """The read end of a pipe that holds ``data`` (small: it must fit the pipe's buffer) and then ends."""
    read, write = os.pipe()
    os.write(write, data)
    os.close(write)
    return read


def _start(server: Server | None, limits: Limits, root: Path, request_fd: int, secret: bytes):
    """(the child, the read end of its ready pipe), its other descriptors handed over and closed here: forked
    by ``server``, or a fresh interpreter if there is none (or it has just ended)."""
    ready, ready_write = os.pipe()
    fds = {"request": request_fd, "secret": _pipe_holding(secret), "ready": ready_write}
    try:
        try:
            process = server.spawn(root, _limits(limits), fds, environment(limits.threads)) if server \
                else _spawn(limits, root, fds)
        except ServerError:
            process = _spawn(limits, root, fds)
    except BaseException:
        os.close(ready)
        raise
    finally:
        for name in ("secret", "ready"):
            os.close(fds[name])
    LIVE.add(process)
    if STOPPING.is_set():     # stopped while it started
        process.kill()
    return process, ready


def _copy_mnist(folder: str, copy: Path) -> str:
    """A copy of the MNIST files in ``folder`` for a sandboxed child, which sees no folder of the user's; its
    path."""
    copy.mkdir()
    for name in os.listdir(folder):
        if name.split(".")[0] in data.FILES:
            shutil.copy(os.path.join(folder, name), copy / name)
    return str(copy)


def run_child(mode: str, request: dict, target: Target, limits: Limits, pace=None) -> ChildRun:
    """Start a child on ``request`` (a dict of tensors and plain data), wait for it within ``limits``.

    ``pace(done, now) -> deadline or None`` (optional, for mode "calls") gives each call its own deadline: it is
    asked when the child is ready (done = 0) and whenever another call record appears in the results folder
    (done = the records written so far), and returns the time.monotonic() by which the call now running must
    return, or None to stop the child there ("halted": the calls after it are not to run). A child past a call's
    deadline is stopped as on a timeout, with ``call_timeout`` set."""
    if STOPPING.is_set():
        return ChildRun("crashed", "not started: the checker is stopping")
    server = server_for(limits.sandbox, frozenset({os.getcwd()}) if target.kind == "module" else frozenset())
    root = Path(tempfile.mkdtemp(prefix="child-" if server else "simple-conv-net-check-",   # the neutral start
                                 dir=server.scratch if server else None))                 # directory
    secret = secrets.token_bytes(records.SECRET_BYTES)
    try:
        target.copy_into(root / "work")
        (root / "results").mkdir()
        if server and server.sandbox and request.get("data_dir"):
            request = dict(request, data_dir=_copy_mnist(request["data_dir"], root / "mnist"))
        with tempfile.TemporaryFile() as request_file:    # unlinked: the child has it as a descriptor only
            torch.save(dict(request, mode=mode, target=target.request()), request_file)
            request_file.seek(0)
            start = time.monotonic()
            process, ready = _start(server, limits, root, request_file.fileno(), secret)
        try:
            drained = _drain(process, ready, limits.timeout, pace and _Paced(pace, root / "results"))
        except BaseException:     # Ctrl-C or SIGTERM while it runs: it ends with us
            process.kill()
            process.wait()
            raise
        finally:
            LIVE.discard(process)
            os.close(ready)
            process.close()
        run = ChildRun("finished", None, stdout=drained.stdout.text(), stderr=drained.stderr.text(),
                       seconds=time.monotonic() - start, call_timeout=drained.call_timeout,
                       ready_seconds=None if drained.ready_at is None else drained.ready_at - start)
        if STOPPING.is_set():
            run.outcome, run.reason = "crashed", "stopped: the checker was interrupted"
            return run
        try:
            run.records = records.read(root / "results", secret)
        except (records.Unreadable, OSError) as error:
            run.outcome, run.reason = "crashed", f"its results could not be read: {error}"
            return run
        if drained.halted:
            run.outcome, run.reason = "halted", f"stopped after {drained.calls_done} calls: its pace said so"
        elif drained.call_timeout:
            run.outcome = "timeout"
            run.reason = (f"call {drained.calls_done} did not return by its deadline: stopped, with every process "
                          f"it started")
        elif drained.timed_out:
            run.outcome = "timeout"
            run.reason = (f"did not finish in {limits.timeout:g} s: stopped, with every process it started"
                          if drained.ready else f"did not start in {STARTUP:g} s (Python and torch): stopped")
        elif "done" not in run.records:
            run.outcome, run.reason = "crashed", _crash_reason(process.returncode, drained.stderr.text())
        return run
    finally:
        shutil.rmtree(root, ignore_errors=True)

"""Run candidate code in a child process that cannot take the checker down with it.

One call of :func:`run_child` is one child: ``python -m simple_conv_net.check.child`` started
with :mod:`subprocess` (a fresh interpreter, nothing inherited but the environment; not
multiprocessing, whose results come back as unrestricted pickles and whose children share the
parent's stdout). The child gets

- its own session and process group, so a timeout kills it and everything it started (SIGKILL
  to the group);
- a wall-clock limit (here) and resource limits it sets on itself before any candidate code
  runs (child.lower_limits): RLIMIT_DATA for memory (RLIMIT_AS would also count the address
  space libraries merely reserve: CUDA reserves far more than any limit), RLIMIT_CPU, RLIMIT_FSIZE
  and no core files;
- a fresh temporary working directory holding a copy of the submission, and stdin closed;
- stdout and stderr on pipes that this process drains as they fill, keeping the first and last
  KEEP bytes of each: a print flood neither blocks the child nor fills a disk.

Results come back as files the child writes one by one (see child), read here with
``torch.load(weights_only=True)``: tensors, numbers, strings, lists and dicts, never objects.

This is isolation from accidents, not a security sandbox: the child runs as the same user, can
read and write whatever that user can, can reach the network, and a process it starts in a new
session escapes the group kill. Grade untrusted code inside a container (see the README).
"""

from __future__ import annotations

import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .targets import Target

KEEP = 4096           # bytes kept from each end of stdout and stderr
GRACE = 2.0           # seconds a child that exited may still hold its pipes open (through its own children)
PROJECT_ROOT = Path(__file__).resolve().parents[2]

SIGNALS = {
    signal.SIGSEGV: "segmentation fault",
    signal.SIGBUS: "bus error",
    signal.SIGABRT: "aborted",
    signal.SIGFPE: "floating-point exception",
    signal.SIGILL: "illegal instruction",
    signal.SIGXCPU: "CPU time limit reached",
    signal.SIGXFSZ: "file size limit reached",
    signal.SIGKILL: "killed from outside (the kernel's out-of-memory killer?)",
}


@dataclass(frozen=True)
class Limits:
    timeout: float = 60.0       # wall-clock seconds for the whole child
    memory_mb: int = 4096       # RLIMIT_DATA
    threads: int = 1            # torch / OpenMP / numba threads in the child
    file_mb: int = 1024         # RLIMIT_FSIZE: the largest file the child may write

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
    outcome: str                 # "finished", "timeout" or "crashed"
    reason: str | None
    records: dict = field(default_factory=dict)   # record name -> what the child wrote
    stdout: str = ""
    stderr: str = ""
    output_bytes: int = 0
    seconds: float = 0.0


def _environment(threads: int) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return env


LIVE: set = set()    # process groups of the children running now (see stop_all)


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def stop_all() -> None:
    """Kill every child running now, with whatever it started (the checker is interrupted)."""
    for pid in list(LIVE):
        _kill_group(pid)


def _drain(process: subprocess.Popen, timeout: float) -> tuple[bool, Capture, Capture]:
    """Read the child's stdout and stderr until both close; True if the wall-clock limit stopped it."""
    captures = {"stdout": Capture(), "stderr": Capture()}
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ, "stdout")
    selector.register(process.stderr, selectors.EVENT_READ, "stderr")
    deadline, exited = time.monotonic() + timeout, False
    timed_out = False
    while selector.get_map():
        if not exited and process.poll() is not None:
            exited, deadline = True, min(deadline, time.monotonic() + GRACE)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            timed_out = not exited
            break
        for key, _ in selector.select(timeout=min(remaining, 0.25)):
            chunk = os.read(key.fileobj.fileno(), 1 << 16)
            if chunk:
                captures[key.data].add(chunk)
            else:
                selector.unregister(key.fileobj)
    selector.close()
    _kill_group(process.pid)  # a timeout, or whatever the child left running
    process.wait()
    return timed_out, captures["stdout"], captures["stderr"]


def _load_records(results: Path) -> dict:
    return {path.stem: torch.load(path, weights_only=True) for path in sorted(results.glob("*.pt"))}


def _crash_reason(returncode: int) -> str:
    if returncode < 0:
        number = -returncode
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else f"signal {number}"
        return f"killed by {name}: {SIGNALS.get(number, 'a signal')}"
    return (f"the process ended with exit code {returncode} before finishing its calls "
            f"(os._exit, or sys.exit where it cannot be caught?)")


def run_child(mode: str, request: dict, target: Target, limits: Limits) -> ChildRun:
    """Start a child on ``request`` (a dict of tensors and plain data), wait for it within ``limits``."""
    root = Path(tempfile.mkdtemp(prefix="simple-conv-net-check-"))
    try:
        work, results = root / "work", root / "results"
        target.copy_into(work)
        results.mkdir()
        torch.save(dict(request, mode=mode, target=target.request()), root / "request.pt")
        command = [sys.executable, "-m", "simple_conv_net.check.child", str(root / "request.pt"), str(results),
                   "--memory-mb", str(limits.memory_mb), "--cpu-seconds", str(limits.cpu_seconds),
                   "--file-mb", str(limits.file_mb)]
        start = time.monotonic()
        process = subprocess.Popen(command, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True, env=_environment(limits.threads))
        LIVE.add(process.pid)
        try:
            timed_out, stdout, stderr = _drain(process, limits.timeout)
        finally:
            LIVE.discard(process.pid)
        seconds = time.monotonic() - start
        run = ChildRun("finished", None, stdout=stdout.text(), stderr=stderr.text(),
                       output_bytes=stdout.total + stderr.total, seconds=seconds)
        try:
            run.records = _load_records(results)
        except Exception as error:  # noqa: BLE001 - a file the candidate wrote over, or a half-written one
            run.outcome, run.reason = "crashed", f"its results could not be read ({type(error).__name__}: {error})"
            return run
        if timed_out:
            run.outcome = "timeout"
            run.reason = f"did not finish in {limits.timeout:g} s: stopped, with every process it started"
        elif "done" not in run.records:
            run.outcome, run.reason = "crashed", _crash_reason(process.returncode)
        return run
    finally:
        shutil.rmtree(root, ignore_errors=True)

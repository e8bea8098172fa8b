"""The fork server: the checker's children forked from a process that has imported torch once.

A child started as a fresh interpreter (``python -P -m simple_conv_net.check.child``) imports torch
before it can run anything, about 2.6 s here, for every function checked. The fork server pays that
once per checker process:

    python -P -m simple_conv_net.check.forkserver --control-fd FD --scratch DIR --parent PID
                                                   [--sandbox privileged|unprivileged]

Started by :class:`Server` (inside bubblewrap when the sandbox is on, see :mod:`.bubblewrap`), it
imports what a child needs (:func:`child.prepare`: torch and the checker's child-side modules) and
nothing else, then checks that it is still one thread: a fork copies only the thread that forks, so
no thread pool (OpenMP's, MKL's, OpenBLAS's, numba's) may have started, and none has while nothing
has computed (the server's environment holds OpenBLAS, which numpy starts at import, to one thread).
It never loads a request, never touches a tensor and never runs candidate code: each child is a
fork of that clean state, and sets its own thread counts (:func:`child.use_threads`).

The checker's side (:class:`Server`) asks for a child by sending, on the control socket (a
SOCK_SEQPACKET socketpair, the server's end inherited), one message: the child's folder and limits
as JSON, and with it (SCM_RIGHTS) six file descriptors: a socket of the child's own, the write ends
of its stdout and stderr pipes, the request, the secret and the ready pipe (see :mod:`.sandbox`).
The server forks; the child takes a new session, puts /dev/null, stdout and stderr on 0, 1 and 2,
closes every other descriptor the server had (the control socket, the other children's), enters
the sandbox if there is one (:func:`bubblewrap.enter`) and runs :func:`child.run` in its folder. On
the child's socket the server says ``exit N`` (N as Popen's returncode) once the child has ended,
and the checker says ``kill``: the server then kills the child's process group, reaps the child and
closes the socket. A checker that closes the socket, or ends, gets its child killed the same way;
one that closes the control socket, or ends, gets every child killed and the server ended. A
child's process is not reaped before the checker's ``kill``, so its process group id cannot be
taken by another process before the group is killed.

Dying with the checker: the server is started by a thread of the checker's that lives as long as
it does (PR_SET_PDEATHSIG, or bubblewrap's --die-with-parent, follow the thread that forked), and
its children die with it (child.die_with_parent).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from . import bubblewrap, child

FDS = ("channel", "stdout", "stderr", "request", "secret", "ready")   # what comes with a request, in order
# numpy's OpenBLAS starts its threads when numpy is imported: one thread, so there are none to lose in a fork (a
# child's numpy then computes on one thread; torch and numba take the child's own thread count)
SERVER_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1"}
MESSAGE_BYTES = 4096     # the most a message of the server's holds
REQUEST_BYTES = 1 << 20  # the most a request holds (the child's environment is in it)
STDERR_LINES = 20        # the server's last lines on stderr, kept to say why it did not start


class ServerError(Exception):
    """The fork server did not start, or cannot be reached; the message says why."""


# ----------------------------------------------------------------------------- the checker's side


class ServedChild:
    """A child of the fork server, as :func:`sandbox._drain` sees a process: stdout and stderr to read,
    ``poll()``, ``kill()`` (its whole process group, or its sandbox) and ``wait()``."""

    def __init__(self, channel: socket.socket, stdout: int, stderr: int) -> None:
        self.channel, self.stdout, self.stderr = channel, stdout, stderr
        self.returncode: int | None = None
        self._closed = False      # the server closed the channel: the child is reaped

    def _receive(self, block: bool) -> None:
        try:
            message = self.channel.recv(MESSAGE_BYTES, 0 if block else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            message = b""
        if message.startswith(b"exit "):
            self.returncode = int(message[5:])
        elif not message:
            self._closed = True
            if self.returncode is None:      # the server ended before the child did: it died with the server
                self.returncode = -signal.SIGKILL

    @property
    def exit_fd(self) -> int:
        """Readable once the server has said how the child ended (or has ended itself): for a selector."""
        return self.channel.fileno()

    def poll(self) -> int | None:
        if self.returncode is None and not self._closed:
            self._receive(block=False)
        return self.returncode

    def kill(self) -> None:
        try:
            self.channel.send(b"kill")
        except OSError:     # the server has closed the channel: the child is gone
            pass

    def wait(self) -> int:
        while not self._closed:
            self._receive(block=True)
        return self.returncode

    def close(self) -> None:
        self.channel.close()
        for fd in (self.stdout, self.stderr):
            os.close(fd)


class Server:
    """One fork server (see the module doc): ``Server(scratch, wrap, sandbox).start(env, timeout)``, then
    ``spawn()`` per child, whose folder must be in ``scratch``. ``wrap`` turns the server's command into the one
    to run (bubblewrap's around it), ``sandbox`` says how the server makes its children's sandboxes
    ("privileged" or "unprivileged"); without them, the server runs as it is and its children share its view.
    """

    def __init__(self, scratch: Path, wrap=None, sandbox: str | None = None) -> None:
        self.scratch, self.wrap, self.sandbox = scratch, wrap, sandbox
        self.process: subprocess.Popen | None = None
        self.stderr = collections.deque(maxlen=STDERR_LINES)
        self.control: socket.socket | None = None
        self._ready = False

    def start(self, env: dict, timeout: float) -> None:
        """Start the server and wait until it has imported torch (``timeout`` seconds at most); ServerError if it
        does not get there."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        command = [sys.executable, "-P", "-m", "simple_conv_net.check.forkserver", "--control-fd",
                   str(theirs.fileno()), "--scratch", str(self.scratch),
                   "--parent", "1" if self.sandbox else str(os.getpid())]
        command += ["--sandbox", self.sandbox] if self.sandbox else []
        options = dict(stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       start_new_session=True, pass_fds=[theirs.fileno()], env=dict(env, **SERVER_ENVIRONMENT),
                       cwd=self.scratch)
        if self.wrap is not None:
            command = self.wrap(command)
        started = threading.Event()
        failure = []
        keeper = threading.Thread(target=self._keep, args=(command, options, theirs, started, failure),
                                  name="simple-conv-net fork server", daemon=True)
        keeper.start()
        started.wait()
        if failure:
            self.stop()
            raise ServerError(f"{command[0]} could not be started: {failure[0]}")
        self._wait_ready(timeout)

    def _keep(self, command, options, theirs, started, failure) -> None:
        """Start the server and stay until it ends (it dies with this thread), keeping its last lines on stderr
        and passing on what it says once it is ready."""
        try:
            self.process = subprocess.Popen(command, **options)
        except OSError as error:
            failure.append(error)
            return
        finally:
            theirs.close()
            started.set()
        for line in self.process.stderr:
            self.stderr.append(line.decode(errors="replace").rstrip())
            if self._ready:
                sys.stderr.write(f"[fork server] {self.stderr[-1]}\n")
        self.process.wait()

    def _wait_ready(self, timeout: float) -> None:
        self.control.settimeout(timeout)
        try:
            message = self.control.recv(MESSAGE_BYTES)
        except OSError:     # the timeout
            message = b"error: not ready in %g s" % timeout
        finally:
            self.control.settimeout(None)
        if message != b"ready":
            self.stop()
            said = message.decode(errors="replace").removeprefix("error: ") or self._last_words()
            raise ServerError(said)
        self._ready = True

    def _last_words(self) -> str:
        """Why a server that ended said nothing: its last line on stderr (bubblewrap's, or a traceback's)."""
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        time.sleep(0.1)     # the keeper may still be reading its last line
        lines = [line for line in self.stderr if line.strip()]
        status = self.process.returncode if self.process is not None else None
        return f"it ended (exit status {status}): {lines[-1] if lines else 'nothing on stderr'}"

    def alive(self) -> bool:
        return self._ready and self.process is not None and self.process.poll() is None

    def spawn(self, folder: Path, setup: dict, fds: dict, environment: dict) -> ServedChild:
        """A child running in ``folder`` (its work and results folders inside), with ``setup`` (the fields of
        child.Setup that are not descriptors), ``fds`` (request, secret, ready: the caller closes them) and
        ``environment`` (os.environ as a fresh interpreter would get it)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        stdout, stdout_write = os.pipe()
        stderr, stderr_write = os.pipe()
        message = json.dumps({"folder": str(folder), "environment": environment, "setup": setup}).encode()
        try:
            socket.send_fds(self.control, [message], [theirs.fileno(), stdout_write, stderr_write,
                                                      fds["request"], fds["secret"], fds["ready"]])
        except OSError as error:
            ours.close()
            for fd in (stdout, stderr):
                os.close(fd)
            raise ServerError(f"the fork server cannot be reached ({error})") from None
        finally:
            theirs.close()
            for fd in (stdout_write, stderr_write):
                os.close(fd)
        return ServedChild(ours, stdout, stderr)

    def stop(self) -> None:
        """End the server and every child it has (closing the control socket says so; killed if it lingers)."""
        if self.control is not None:
            self.control.close()
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                kill_group(self.process.pid)
                self.process.wait()
        self._ready = False


# ----------------------------------------------------------------------------- the server's side


@dataclass
class _Child:
    channel: socket.socket
    said: int | None = None    # in the sandbox: where the child says how the candidate's process ended
    exited: bool = False       # it has ended (not reaped yet); the checker has been told
    killed: bool = False       # the checker said kill, or closed its end


def kill_group(pid: int) -> None:
    """SIGKILL to the process group ``pid`` leads, if it is still there."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _close_all_but(keep: set) -> None:
    low = 0
    for fd in sorted(keep) + [os.sysconf("SC_OPEN_MAX")]:
        if low < fd:       # os.closerange(n, n) would close every descriptor from n up (close_range(n, n - 1))
            os.closerange(low, fd)
        low = fd + 1


def _become_child(request: dict, fds: list, sandbox: str | None, scratch: str, server: int, say: int | None):
    """In the fork: set the child up (see the module doc) and run it; never returns."""
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if not sandbox:      # (a sandboxed child, process 1 of its namespace, sees no parent: see bubblewrap.enter)
            child.die_with_parent(server)
        os.setsid()
        given = dict(zip(FDS, fds))
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(given["stdout"], 1)
        os.dup2(given["stderr"], 2)
        _close_all_but({0, 1, 2, given["request"], given["secret"], given["ready"], *([say] if sandbox else [])})
        os.environ.clear()
        os.environ.update(request["environment"])
        folder = request["folder"]
        if sandbox:
            bubblewrap.enter(folder, scratch, sandbox == "privileged", say)    # returns in the candidate's process
        os.chdir(folder)       # the neutral start directory: nothing of the submission's is importable from it
        status = child.run(child.Setup(work=os.path.join(folder, "work"), results=os.path.join(folder, "results"),
                                       request_fd=given["request"], secret_fd=given["secret"],
                                       ready_fd=given["ready"], parent=1 if sandbox else server, **request["setup"]))
    except BaseException:  # noqa: BLE001 - said on the child's stderr, where the checker reads why it crashed
        traceback.print_exc()
    child.end(status)


def _exit_status(pid: int) -> int | None:
    """The child's returncode (negative: the signal that ended it) if it has ended, without reaping it."""
    result = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if result is None or result.si_pid == 0:
        return None
    return result.si_status if result.si_code == os.CLD_EXITED else -result.si_status


class _Serving:
    def __init__(self, control: socket.socket, sandbox: str | None, scratch: str) -> None:
        self.control, self.sandbox, self.scratch = control, sandbox, scratch
        self.children: dict[int, _Child] = {}
        self.selector = selectors.DefaultSelector()
        self.wake, wake_write = os.pipe()
        os.set_blocking(self.wake, False)
        os.set_blocking(wake_write, False)
        signal.signal(signal.SIGCHLD, lambda signum, frame: None)
        signal.set_wakeup_fd(wake_write)
        self.selector.register(control, selectors.EVENT_READ)
        self.selector.register(self.wake, selectors.EVENT_READ)

    def loop(self) -> None:
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.control:
                    if not self._fork():
                        return
                elif key.fileobj == self.wake:
                    os.read(self.wake, 4096)
                    self._notice_exits()
                else:
                    self._heard(key.data)

    def _fork(self) -> bool:
        """Fork the child the checker asks for; False when the checker has closed the control socket."""
        message, fds, _, _ = socket.recv_fds(self.control, REQUEST_BYTES, len(FDS))
        if not message:
            return False
        if len(fds) != len(FDS):
            for fd in fds:
                os.close(fd)
            return True
        server = os.getpid()
        if self.sandbox:
            pid, said = bubblewrap.fork()
        else:
            pid, said = os.fork(), None
        if pid == 0:
            _become_child(json.loads(message), fds, self.sandbox, self.scratch, server, said)
        channel = socket.socket(fileno=fds[0])
        for fd in fds[1:]:
            os.close(fd)
        self.children[pid] = _Child(channel, said)
        self.selector.register(channel, selectors.EVENT_READ, pid)
        self._notice_exits()      # a SIGCHLD that came before the child was known
        return True

    def _notice_exits(self) -> None:
        for pid, entry in list(self.children.items()):
            if not entry.exited and (status := _exit_status(pid)) is not None:
                if entry.said is not None:
                    status = bubblewrap.returncode(entry.said, status)
                entry.exited = True
                try:
                    entry.channel.send(b"exit %d" % status)
                except OSError:   # the checker has closed its end
                    pass
                self._settle(pid)

    def _heard(self, pid: int) -> None:
        """The checker said kill, or closed its end: kill the child's process group."""
        entry = self.children[pid]
        try:
            said = entry.channel.recv(MESSAGE_BYTES)
        except OSError:
            said = b""
        if not said:
            self.selector.unregister(entry.channel)
        kill_group(pid)
        entry.killed = True
        self._notice_exits()
        self._settle(pid)

    def _settle(self, pid: int) -> None:
        """Reap a child that has ended and been killed, and close its channel (the checker's wait ends)."""
        entry = self.children.get(pid)
        if entry is None or not (entry.exited and entry.killed):
            return
        os.waitpid(pid, 0)
        if entry.channel.fileno() in self.selector.get_map():
            self.selector.unregister(entry.channel)
        entry.channel.close()
        if entry.said is not None:
            os.close(entry.said)
        del self.children[pid]

    def stop(self) -> None:
        for pid in self.children:
            kill_group(pid)


def _threads() -> int:
    return len(os.listdir("/proc/self/task"))


def serve(control: socket.socket, scratch: str, sandbox: str | None) -> None:
    """The server's life: prepare, say ready (or why not), serve until the checker closes the control socket."""
    try:
        child.prepare()
        if _threads() != 1:
            raise ServerError(f"{_threads()} threads after importing torch: forking would copy only one of them")
        if sandbox:
            bubblewrap.probe(scratch, sandbox == "privileged")
    except Exception as error:  # noqa: BLE001 - said to the checker, which then starts its children otherwise
        control.send(f"error: {error}".encode()[:MESSAGE_BYTES])
        return
    control.send(b"ready")
    serving = _Serving(control, sandbox, scratch)
    try:
        serving.loop()
    finally:
        serving.stop()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simple_conv_net.check.forkserver")
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--scratch", required=True)
    parser.add_argument("--parent", type=int, required=True)
    parser.add_argument("--sandbox", choices=["privileged", "unprivileged"])
    args = parser.parse_args(argv)
    child.die_with_parent(args.parent)
    serve(socket.socket(fileno=args.control_fd), args.scratch, args.sandbox)
    return 0


if __name__ == "__main__":
    sys.exit(main())

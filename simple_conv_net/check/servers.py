"""Which fork server a child starts from: in the sandbox or not, one per checker process and view.

:func:`server_for` gives the running :class:`.forkserver.Server` for ``--sandbox`` (auto, bwrap
or none) and the folders a child must read beyond the Python environment (the folder the checker
runs in, for a module target): started by the first child that needs it, reused by every other,
stopped at exit (:func:`stop_servers`), started again if it has died. Where the sandbox cannot
be had, ``auto`` says so once, in one line, and goes on without it, ``bwrap`` raises
:class:`SandboxError`; where no server can start at all (not Linux, or it failed: said once),
None, and the children start as fresh interpreters (see :mod:`.sandbox`).

This module does not import torch: ``python -m simple_conv_net.check`` starts the server here
(:func:`start_early`) while it imports torch itself, the two taking about as long, so that the
first child does not wait for both in turn.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from . import bubblewrap, child
from .forkserver import Server, ServerError
from .targets import TargetError, resolve

SANDBOXES = ("auto", "bwrap", "none")
STARTUP = 120.0       # seconds a child (or a server) may take to start Python and torch
PROJECT_ROOT = Path(__file__).resolve().parents[2]


class SandboxError(Exception):
    """``--sandbox bwrap`` where bubblewrap cannot be used; the message says why."""


def environment(threads: int) -> dict:
    """The environment of a child, as a fresh interpreter would start with it: this process's, unbuffered,
    ``threads`` threads, this project importable."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for name in child.THREAD_VARIABLES:
        env[name] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")]))
    return env


_SERVERS: dict = {}         # (sandboxed, folders it shows) -> its Server
_UNUSABLE: dict = {}        # "sandbox" or "fork server" -> why it cannot be used in this process
_SERVERS_LOCK = threading.Lock()


def _start_server(sandboxed: bool, folders: frozenset) -> Server:
    scratch = Path(tempfile.mkdtemp(prefix="simple-conv-net-check-"))
    if sandboxed:
        server = Server(scratch, functools.partial(bubblewrap.command, scratch=scratch, project=PROJECT_ROOT,
                                                   readable=sorted(folders)),
                        "privileged" if bubblewrap.privileged() else "unprivileged")
    else:
        server = Server(scratch)
    try:
        server.start(environment(1), STARTUP)       # (each child sets its own threads: child.use_threads)
    except ServerError:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    _SERVERS[sandboxed, folders] = server
    return server


def _server(sandboxed: bool, folders: frozenset) -> Server:
    """A running server that shows ``folders`` (a new one if none does); ServerError if it cannot start."""
    for (boxed, shown), server in list(_SERVERS.items()):
        if not server.alive():
            _stop(_SERVERS.pop((boxed, shown)))
        elif boxed == sandboxed and folders <= shown:
            return server
    return _start_server(sandboxed, folders)


def _unusable(kind: str, reason: str, consequence: str) -> None:
    """Remember that ``kind`` cannot be used here, and say so once, in one line."""
    _UNUSABLE[kind] = reason
    print(f"{kind} off: {reason}; {consequence}", file=sys.stderr)


def server_for(sandbox: str, folders: frozenset = frozenset()) -> Server | None:
    """The fork server for ``--sandbox sandbox`` that shows ``folders``, or None where children must start as
    fresh interpreters; SandboxError where the sandbox was asked for and cannot be had."""
    with _SERVERS_LOCK:
        if sandbox != "none" and "sandbox" not in _UNUSABLE:
            try:
                reason = bubblewrap.unavailable()
                if reason is None:
                    return _server(True, folders)
            except ServerError as error:
                reason = str(error)
            if sandbox == "bwrap":
                raise SandboxError(f"--sandbox bwrap: {reason}")
            _unusable("sandbox", reason, "candidate code runs as you, with your files and the network in reach "
                                         "(--sandbox none: this is meant)")
        elif sandbox == "bwrap":
            raise SandboxError(f"--sandbox bwrap: {_UNUSABLE['sandbox']}")
        if "fork server" in _UNUSABLE:
            return None
        if not sys.platform.startswith("linux"):
            _UNUSABLE["fork server"] = "needs Linux"
            return None
        try:
            return _server(False, frozenset())
        except ServerError as error:
            _unusable("fork server", str(error), "each child starts its own interpreter (slower)")
            return None


def _option(argv: list[str], name: str) -> str | None:
    """The value of ``name`` in ``argv`` (``--name VALUE`` or ``--name=VALUE``), or None."""
    for index, item in enumerate(argv):
        if item == name and index + 1 < len(argv):
            return argv[index + 1]
        if item.startswith(name + "="):
            return item.split("=", 1)[1]
    return None


def _checks_files(argv: list[str]) -> bool:
    """Whether the command line ``argv`` checks a file, a folder or a batch (not a module, not --help)."""
    if not argv or {"-h", "--help"} & set(argv) or argv[0] in ("autograder", "run-autograder"):
        return False    # (the autograder's subcommands check in a process of their own, if at all)
    if argv[0] == "--batch":
        return True
    try:
        return resolve(argv[0]).kind != "module"
    except TargetError:
        return False


def start_early(argv: list[str]) -> threading.Thread | None:
    """Start the fork server in the background, for the command line ``argv``, if it checks a file, a folder or
    a batch: a module target needs a view of its own (the folder the checker runs in), anything else no server.
    The thread, or None. The command itself reports what goes wrong."""
    sandbox = _option(argv, "--sandbox") or "auto"
    if sandbox not in SANDBOXES or not _checks_files(argv):
        return None

    def start():
        try:
            server_for(sandbox)
        except SandboxError:
            pass
    thread = threading.Thread(target=start, name="simple-conv-net fork server start", daemon=True)
    thread.start()
    return thread


def _stop(server: Server) -> None:
    server.stop()
    shutil.rmtree(server.scratch, ignore_errors=True)


@atexit.register
def stop_servers() -> None:
    """Stop every fork server, and with it every child it has."""
    with _SERVERS_LOCK:
        while _SERVERS:
            _stop(_SERVERS.popitem()[1])

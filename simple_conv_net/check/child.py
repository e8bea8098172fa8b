"""The checker's child process: import the candidate, run what the request asks, write records.

    python -P -m simple_conv_net.check.child --work WORK --results RESULTS --request-fd R --secret-fd S
        --ready-fd Y --parent PID --memory-mb M --cpu-seconds C --file-mb F --threads T

A child is started in one of two ways (:mod:`.sandbox`): forked by the fork server
(:mod:`.forkserver`, which has imported torch and this module's :func:`prepare` once, and calls
:func:`run` in the fork), or as that command, a fresh interpreter, where the server cannot start.
Either way it starts in a fresh session, in a neutral directory, with stdin closed and
stdout/stderr piped. In order, before any candidate code runs, it asks to die with its parent
(PR_SET_PDEATHSIG), lowers its own resource limits (memory, CPU seconds, file size, no core
files), reads and closes the secret that signs its records, imports what it needs of the checker
(so a module of the submission's cannot stand in for one), sets its thread counts, loads and
closes the request (``torch.load(weights_only=True)``), moves into WORK (the copy of the
submission), forgets its arguments and says it is ready. Then it imports the candidate and does
one of:

discover   which of the checker's names the module defines, with their signatures
calls      each call of the plan on one function (:func:`runner.run_call`), a record per call
train      SimpleConvNet built from the candidate's functions, trained (:mod:`.training`)

Every record is written to RESULTS as it is made, signed, to a temporary name and
renamed (:class:`.records.Writer`), so a child killed later (a timeout, a crash) leaves what it
finished; ``done`` comes last.
"""

from __future__ import annotations

import argparse
import ctypes
import faulthandler
import importlib
import importlib.machinery
import importlib.util
import os
import resource
import signal
import sys
from dataclasses import dataclass, fields
from pathlib import Path

MB = 1 << 20
PR_SET_PDEATHSIG = 1
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS")


@dataclass(frozen=True)
class Setup:
    """What a child is told: its folders, the descriptors it reads and writes, its parent and its limits."""

    work: str
    results: str
    request_fd: int
    secret_fd: int
    ready_fd: int
    parent: int           # the process id getppid() must give: the child ends at once if it does not
    memory_mb: int
    cpu_seconds: int
    file_mb: int
    threads: int


def prepare():
    """Import what a child needs of torch and the checker before it runs candidate code (the fork server does
    this once, without starting a thread); the modules, for :func:`run` to use."""
    import torch

    from . import forms, records, runner, training
    return torch, forms, records, runner, training


def use_threads(threads: int) -> None:
    """``threads`` threads for torch (OpenMP, MKL) and numba here and in what the candidate starts. torch reads
    OMP_NUM_THREADS when it loads, before a fork, so it is told here too; numba, if the candidate imports it,
    reads the variables then."""
    import torch

    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    torch.set_num_threads(threads)


def lower_limits(memory_mb: int, cpu_seconds: int, file_mb: int) -> None:
    """Soft and hard limits on this process (and what it starts): data memory, CPU time, file size, cores."""
    limits = {resource.RLIMIT_DATA: memory_mb * MB, resource.RLIMIT_CPU: cpu_seconds,
              resource.RLIMIT_FSIZE: file_mb * MB, resource.RLIMIT_CORE: 0}
    for kind, value in limits.items():
        hard = resource.getrlimit(kind)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))


def die_with_parent(parent: int) -> None:
    """Ask Linux for SIGKILL when the thread that started this process ends (the checker's, or the fork
    server's), however it ends (a checker killed with SIGKILL cannot stop its children itself); elsewhere
    nothing. If that parent (``parent``, as getppid() gives it) is already gone, end now."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent:
        os._exit(1)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def load_module(target: dict):
    """Import the candidate: a module name (where the user ran the checker, on sys.path), or the copied file or
    package in the working directory, under its own name unless that names a module already imported or a
    standard one (then under a private name, so it cannot replace the checker's). Its folder is first on
    sys.path while it imports, as on the student's machine, and last afterwards, so what the checker imports
    later is never a file of the submission's."""
    folder = target["cwd"] if target["kind"] == "module" else os.getcwd()
    sys.path.insert(0, folder)
    try:
        if target["kind"] == "module":
            return importlib.import_module(target["module"])
        name = target["module"]
        if name in sys.modules or name in getattr(sys, "stdlib_module_names", ()):
            name = f"_submission_{name}"
        if target["kind"] == "package":
            package = Path(folder) / target["module"]
            if (package / "__init__.py").is_file():
                spec = importlib.util.spec_from_file_location(name, package / "__init__.py",
                                                              submodule_search_locations=[str(package)])
            else:     # a package folder without __init__.py (cs231n's layers.py alone): a namespace package
                spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
                spec.submodule_search_locations = [str(package)]
        else:
            spec = importlib.util.spec_from_file_location(name, Path(folder) / target["file"])
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        if spec.loader is not None:
            spec.loader.exec_module(module)
        return importlib.import_module(f"{name}.{target['submodule']}") if target.get("submodule") else module
    finally:
        sys.path.remove(folder)
        sys.path.append(folder)


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def arguments(setup: Setup) -> list[str]:
    """``setup`` as this module's command-line arguments."""
    return [item for field in fields(Setup) for item in (_option(field.name), str(getattr(setup, field.name)))]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simple_conv_net.check.child")
    for field in fields(Setup):
        parser.add_argument(_option(field.name), type=str if field.type == "str" else int, required=True)
    return run(Setup(**vars(parser.parse_args(argv))))


def run(setup: Setup) -> int:
    """The child's work (see the module doc); its exit status."""
    die_with_parent(setup.parent)
    lower_limits(setup.memory_mb, setup.cpu_seconds, setup.file_mb)
    faulthandler.enable()
    secret = _read_all(setup.secret_fd)
    torch, forms, records, runner, training = prepare()
    use_threads(setup.threads)
    write = records.Writer(setup.results, secret)
    del secret
    with os.fdopen(setup.request_fd, "rb") as file:
        request = torch.load(file, weights_only=True)
    form = forms.form_of(request) if request["mode"] == "calls" else None    # an instructor's file: before candidate code
    os.chdir(setup.work)
    sys.argv[1:] = []
    os.write(setup.ready_fd, b"ready")
    os.close(setup.ready_fd)
    try:
        module = load_module(request["target"])
    except BaseException as error:  # noqa: BLE001 - candidate code: SyntaxError, SystemExit, anything
        write("import", {"error": runner.describe_error(error, "import")})
        write("done", {})
        return 0
    if request["mode"] == "discover":
        write("discovery", runner.discover(module, request["names"]))
    elif request["mode"] == "calls":
        for index, call in enumerate(request["calls"]):
            write(f"call-{index:03d}", form.call(module, request["function"], call))
    else:
        training.train_in_child(module, request, write)
    write("done", {})
    return 0


def end(status: int):
    """Leave the child now: what it printed flushed, no atexit handler or thread the candidate left behind run or
    waited for."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # the candidate closed it
            pass
    os._exit(status)


if __name__ == "__main__":
    end(main())

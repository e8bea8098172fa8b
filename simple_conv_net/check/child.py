"""The checker's child process: import the candidate, run what the request asks, write records.

    python -m simple_conv_net.check.child REQUEST RESULTS --memory-mb M --cpu-seconds S --file-mb F

The parent (:mod:`simple_conv_net.check.sandbox`) starts it in a fresh session, in a temporary
working directory holding a copy of the submission, with stdin closed and stdout/stderr piped.
First it lowers its own resource limits (memory, CPU seconds, file size, no core files), then
loads REQUEST (``torch.load(weights_only=True)``), imports the candidate and does one of:

discover   which of the checker's names the module defines, with their signatures
calls      each call of the plan on one function (:func:`runner.run_call`), a record per call
train      SimpleConvNet built from the candidate's functions, trained (:mod:`.training`)

Every record is written to RESULTS as it is made, to a temporary name and renamed, so a child
killed later (a timeout, a crash) leaves what it finished; ``done.pt`` comes last.
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import importlib.util
import os
import resource
import sys
from pathlib import Path

MB = 1 << 20


def lower_limits(memory_mb: int, cpu_seconds: int, file_mb: int) -> None:
    """Soft and hard limits on this process (and what it starts): data memory, CPU time, file size, cores."""
    limits = {resource.RLIMIT_DATA: memory_mb * MB, resource.RLIMIT_CPU: cpu_seconds,
              resource.RLIMIT_FSIZE: file_mb * MB, resource.RLIMIT_CORE: 0}
    for kind, value in limits.items():
        hard = resource.getrlimit(kind)[1]
        value = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(kind, (value, value))


def load_module(target: dict):
    """Import the candidate: a copied file (its folder, the working directory, on sys.path) or a module name."""
    if target["kind"] == "module":
        sys.path.insert(1, target["cwd"])  # where `python -m` was run, as it would be for the user
        return importlib.import_module(target["module"])
    if target["kind"] == "package":        # copied into the working directory, first on sys.path
        return importlib.import_module(target["module"])
    folder = os.getcwd()
    sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(target["module"], Path(folder) / target["file"])
    module = importlib.util.module_from_spec(spec)
    sys.modules[target["module"]] = module
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simple_conv_net.check.child")
    parser.add_argument("request")
    parser.add_argument("results")
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=int, required=True)
    parser.add_argument("--file-mb", type=int, required=True)
    args = parser.parse_args(argv)
    lower_limits(args.memory_mb, args.cpu_seconds, args.file_mb)
    faulthandler.enable()

    import torch

    from . import runner, training

    # Kept before the candidate runs: what it does to its own copy of torch or os cannot stop the records.
    save, replace, results = torch.save, os.replace, Path(args.results)

    def write(name: str, record) -> None:
        temporary = results / f".{name}.tmp"
        save(record, temporary)
        replace(temporary, results / f"{name}.pt")

    request = torch.load(args.request, weights_only=True)
    try:
        module = load_module(request["target"])
    except BaseException as error:  # noqa: BLE001 - candidate code: SyntaxError, SystemExit, anything
        write("import", {"error": runner.describe_error(error, "import")})
        write("done", {})
        return 0
    if request["mode"] == "discover":
        write("discovery", runner.discover(module, request["names"]))
    elif request["mode"] == "calls":
        function = getattr(module, request["function"])
        for index, call in enumerate(request["calls"]):
            write(f"call-{index:03d}", runner.run_call(function, call))
    else:
        training.train_in_child(module, request, write)
    write("done", {})
    return 0


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # no atexit handlers or threads the candidate left behind may hold the process open

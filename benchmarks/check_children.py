"""What a checker's child costs: started by the fork server, by the fork server in bubblewrap, or as a fresh
interpreter.

    python benchmarks/check_children.py [--children 10] [TARGET]

For each way it starts the server (timed: torch imported once), then runs ``--children`` children one after the
other, each the checker's discovery of TARGET (import the submission, list its functions: the least a function's
child does), and prints the median time until a child is ready to import the submission and until it has ended
and been reaped, with the date and the load average before and after. Every function checked costs one child.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import time
from pathlib import Path

from simple_conv_net.check import servers
from simple_conv_net.check.forms import ALL_NAMES
from simple_conv_net.check.sandbox import Limits, run_child
from simple_conv_net.check.targets import resolve

GOOD = Path(__file__).resolve().parents[1] / "parity_tests" / "check_corpus" / "good.py"
WAYS = {"fork server": "none", "fork server in bubblewrap": "bwrap", "fresh interpreter": "none"}


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def measure(way: str, target, children: int) -> str:
    if way == "fresh interpreter":
        servers.stop_servers()
        servers._UNUSABLE["fork server"] = "the benchmark's fresh-interpreter run"   # as where none can start
    start = time.monotonic()
    try:
        servers.server_for(WAYS[way])
    except servers.SandboxError as error:
        return f"{way:28s} not measured: {error}"
    started = time.monotonic() - start
    ready, total = [], []
    for _ in range(children):
        run = run_child("discover", {"names": list(ALL_NAMES)}, target, Limits(sandbox=WAYS[way]))
        assert run.outcome == "finished", (run.outcome, run.reason)
        ready.append(run.ready_seconds)
        total.append(run.seconds)
    server = f"server started in {started:5.2f} s, " if way != "fresh interpreter" else " " * 26
    return (f"{way:28s} {server}child ready in {statistics.median(ready) * 1000:6.0f} ms, "
            f"done in {statistics.median(total) * 1000:6.0f} ms (median of {children})")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", nargs="?", default=str(GOOD))
    parser.add_argument("--children", type=int, default=10)
    args = parser.parse_args(argv)
    target = resolve(args.target)
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
          f"{os.cpu_count()} CPUs, load average {_load()}; discovery of {target.name}")
    for way in WAYS:
        print(measure(way, target, args.children), flush=True)
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()

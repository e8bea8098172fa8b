"""What a grading container allows, and the checker's --jobs and --memory-mb chosen to fit it.

A platform's container is small (Gradescope's default: half a CPU and 768 MB), while the command's
defaults are made for a workstation (a child per CPU, each allowed 4096 MB). :func:`measure` reads
what this process may use:

- CPUs: the CPUs it may run on (``os.sched_getaffinity``), capped by its cgroup's CPU quota (cgroup
  v2 ``cpu.max``, "QUOTA PERIOD"; v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), the smallest
  along the path to the hierarchy's root: a container given half a CPU has 0.5, however many the
  host shows;
- memory: its cgroup's limit (v2 ``memory.max``, v1 ``memory.limit_in_bytes``, the smallest along
  the path), else the machine's memory.

:func:`plan` then keeps PARENT_MB for the checker's own process and shares the rest among the
children: one per whole CPU (at least one), as many as get CHILD_MB each, and each child's
``--memory-mb`` its share, at most the command's 4096. A container too small for one child is a
:class:`TooSmall` error, said as such (never a student's crash). The sum of the children's limits
and the parent's share stays within the container, so the kernel's out-of-memory killer should
never be what stops a child; :func:`oom_kills` reads the cgroup's count of its kills (v2
``memory.events``, v1 ``memory.oom_control``), for the autograder to tell a grading error when it
rose anyway.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

PARENT_MB = 700        # the checker's own process at its peak: 675 MB resident measured (torch, MNIST, native training)
CHILD_MB = 640         # the least --memory-mb a child gets: a correct submission checks and trains within 512 (measured)
MOST_CHILD_MB = 4096   # the command's default --memory-mb
UNLIMITED = 1 << 60    # a cgroup v1 limit this large means none


class TooSmall(RuntimeError):
    """The container has too little memory for the checker and one child."""


@dataclass(frozen=True)
class Container:
    cpus: float
    cpus_from: str       # where the figure comes from, for the instructor's log
    memory_mb: int
    memory_from: str


@dataclass(frozen=True)
class Plan:
    jobs: int            # --jobs
    memory_mb: int       # --memory-mb
    threads: int         # torch / OpenMP threads in each child

    def describe(self, box: Container) -> str:
        return (f"container: {box.cpus:g} CPUs ({box.cpus_from}), {box.memory_mb} MB ({box.memory_from}): "
                f"--jobs {self.jobs} --memory-mb {self.memory_mb}, {self.threads} thread(s) per child")


def _mounts(proc: Path):
    """(file system type, mount options and super options, root within the hierarchy, mount point) of each mount."""
    for line in (proc / "mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 6 or len(tail) < 3:
            continue
        yield tail[0], set(tail[2].split(",")) | set(fields[5].split(",")), fields[3], Path(fields[4])


def cgroup_dirs(controller: str, proc: Path = Path("/proc/self")) -> tuple[str | None, list[Path]]:
    """("v1" or "v2", this process's cgroup directory of ``controller`` and each one above it up to the mount point),
    or (None, []) where there is no cgroup file system to read. A controller mounted on its own (v1) wins over the
    unified hierarchy, as the kernel enforces it there."""
    try:
        memberships = {}
        for line in (proc / "cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            for name in controllers.split(",") if controllers else [""]:
                memberships[name] = path
        mounts = list(_mounts(proc))
    except (OSError, ValueError):
        return None, []
    for version, wanted in (("v1", controller), ("v2", "")):
        for fstype, options, root, point in mounts:
            if wanted not in memberships or fstype != ("cgroup" if version == "v1" else "cgroup2") \
                    or (version == "v1" and controller not in options):
                continue
            path = memberships[wanted]
            inside = path[len(root):] if root != "/" and (path + "/").startswith(root + "/") else path
            here = point / inside.lstrip("/")
            dirs = [here, *(parent for parent in here.parents if point in (parent, *parent.parents))]
            return version, dirs
    return None, []


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cpu_quota(proc: Path = Path("/proc/self")) -> tuple[float | None, str]:
    """(the cgroup's CPU quota in CPUs, where it was read), or (None, why not)."""
    version, dirs = cgroup_dirs("cpu", proc)
    quotas = []
    for folder in dirs:
        if version == "v2":
            text = (_read(folder / "cpu.max") or "max").split()
            if text[0] != "max":
                quotas.append((int(text[0]) / int(text[1]), folder / "cpu.max"))
        else:
            quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
            if quota and period and int(quota) > 0:
                quotas.append((int(quota) / int(period), folder / "cpu.cfs_quota_us"))
    if not quotas:
        return None, f"no cgroup CPU quota ({'cgroup ' + version if version else 'no cgroup file system'})"
    quota, where = min(quotas)
    return quota, f"cgroup {version} {where}"


def memory_limit(proc: Path = Path("/proc/self")) -> tuple[int | None, str]:
    """(the cgroup's memory limit in bytes, where it was read), or (None, why not)."""
    version, dirs = cgroup_dirs("memory", proc)
    name = "memory.max" if version == "v2" else "memory.limit_in_bytes"
    limits = [(int(text), folder / name) for folder in dirs
              if (text := _read(folder / name)) and text != "max" and int(text) < UNLIMITED]
    if not limits:
        return None, f"no cgroup memory limit ({'cgroup ' + version if version else 'no cgroup file system'})"
    limit, where = min(limits)
    return limit, f"cgroup {version} {where}"


def oom_kills(proc: Path = Path("/proc/self")) -> int | None:
    """How many processes the kernel's out-of-memory killer has killed in this cgroup (None where it is not
    counted)."""
    version, dirs = cgroup_dirs("memory", proc)
    if not dirs:
        return None
    text = _read(dirs[0] / ("memory.events" if version == "v2" else "memory.oom_control")) or ""
    counts = [int(line.split()[1]) for line in text.splitlines() if line.startswith("oom_kill ")]
    return counts[0] if counts else None


def measure(proc: Path = Path("/proc/self")) -> Container:
    """The CPUs and memory this process may use."""
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota, quota_from = cpu_quota(proc)
    cpus, cpus_from = (quota, quota_from) if quota is not None and quota < usable else \
        (usable, f"{usable} usable by this process; {quota_from}")
    limit, memory_from = memory_limit(proc)
    machine = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if limit is None or limit > machine:
        limit, memory_from = machine, f"the machine's memory; {memory_from}"
    return Container(cpus, cpus_from, limit >> 20, memory_from)


def plan(box: Container) -> Plan:
    """--jobs, --memory-mb and the threads per child for ``box`` (see the module's doc); TooSmall if it cannot hold
    the checker and one child."""
    budget = box.memory_mb - PARENT_MB
    whole_cpus = max(1, math.floor(box.cpus))
    jobs = min(whole_cpus, budget // CHILD_MB)
    if jobs < 1:
        raise TooSmall(f"the container has {box.memory_mb} MB of memory ({box.memory_from}); the checker needs "
                       f"{PARENT_MB} MB for itself and {CHILD_MB} MB for a child, {PARENT_MB + CHILD_MB} MB in all")
    return Plan(jobs, min(MOST_CHILD_MB, budget // jobs), max(1, whole_cpus // jobs))

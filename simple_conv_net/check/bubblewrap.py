"""The sandbox (``--sandbox bwrap``): the fork server inside bubblewrap, each child in namespaces of its own.

A bubblewrap per child would import torch again for each one. Instead the fork server
(:mod:`.forkserver`) runs inside one bubblewrap (:func:`command`): new PID, network, IPC, UTS and
(for a user other than root) user namespaces, a root of its own holding only the system (/usr,
/etc and the /bin, /lib links) and the Python environment (the interpreter's prefixes, sys.path,
this project; for a module target, the folder the checker runs in) read-only, a few devices, a
/proc, a /tmp of its own, and the run's scratch folder, where the children's folders are (and a
training child's copy of MNIST), writable. The server keeps the capabilities it
needs to make each child a sandbox of its own, and never runs candidate code; a child, before any
candidate code runs:

1. is forked into a new PID namespace (:func:`fork`: the server unshares one, forks, and goes back
   to its own), where it is process 1 (P1);
2. unshares new mount, network, IPC and UTS namespaces; covers /tmp and /dev/shm with fresh tmpfs
   (private, size-limited), and the scratch folder with them, then binds its own folder (work and
   results) back at its path: it sees no other child's folder; mounts the namespace's /proc, where
   only its own processes are; and, where the checker runs as root, hands its folder to uid 65534
   (:func:`enter`);
3. forks P2, the candidate's process, and does nothing but reap until P2 ends; then it writes P2's
   end into a pipe the server reads, and ends, and the kernel kills whatever P2 left in the
   namespace. Killing P1 (the server kills its process group) does the same;
4. P2 becomes an unprivileged user, uid and gid 65534 (nobody), in a user namespace of its own,
   with no capabilities (none over its mounts, which its namespace does not own) and no_new_privs,
   keeps of the checker's environment only the variables it runs by (ENVIRONMENT), and runs the
   child (:func:`child.run`: rlimits, the secret, the request...). Where the checker runs as root
   that is the real uid 65534, so root's files that the sandbox shows (/etc/shadow) stay
   unreadable; otherwise it maps to the checker's user, who owns its folder.

A new network namespace has only a loopback interface, down: no connection to anything, 127.0.0.1
included. bubblewrap's own /dev would put the server in a second user namespace, without the right
to mount, so the devices are bound one by one; and bubblewrap makes the folders above its binds
0700, closed to uid 65534, so they are made 0755 first. The server checks the whole chain once
before it says it is ready (:func:`probe`).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import sys
import tempfile
import traceback
from pathlib import Path

NOBODY = 65534           # the kernel's overflow uid and gid, "nobody" on Debian
TMP_SIZE = "256m"        # a child's private /tmp (memory: it is a tmpfs)
SHM_SIZE = "64m"         # and /dev/shm
# The environment variables a sandboxed child keeps (see _keep_environment)
ENVIRONMENT = ("PATH", "LANG", "LANGUAGE", "TZ", "TERM", "PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONHASHSEED",
               "PYTHONDONTWRITEBYTECODE", "PYTHONWARNINGS", "PYTHONIOENCODING")
ENVIRONMENT_PREFIXES = ("LC_", "OMP_", "MKL_", "NUMBA_", "OPENBLAS_")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc")
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
# What a server keeps to make its children's sandboxes: namespaces and mounts, and as root the handing of a child's
# folder to uid 65534 and the change to that uid (a user's server has them only in bubblewrap's user namespace)
ROOT_CAPABILITIES = ("CAP_SYS_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN")

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_BIND, MS_REC, MS_PRIVATE = 0x2, 0x4, 0x8, 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
CAPABILITY_VERSION_3 = 0x20080522


def privileged() -> bool:
    """Whether the checker runs as root (then so does the server, and the children drop to the real nobody)."""
    return os.geteuid() == 0


def unavailable() -> str | None:
    """Why bubblewrap cannot be used here, or None (whether it works is known once the server starts)."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    if shutil.which("bwrap") is None:
        return "bwrap is not installed (Debian and Ubuntu: apt-get install bubblewrap)"
    project = str(Path(__file__).resolve().parents[2])
    under_tmp = [path for path in (sys.prefix, sys.exec_prefix, project) if _inside(os.path.realpath(path), "/tmp")]
    if under_tmp:
        return (f"the Python environment or this project is under /tmp ({under_tmp[0]}), which the sandbox replaces "
                f"with a private /tmp of its own: install them in a folder outside /tmp")
    return None


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


# ----------------------------------------------------------------------------- the checker's side


def _folders(paths) -> list[str]:
    """The existing folders among ``paths``, without those inside another."""
    kept = []
    for path in sorted({os.path.abspath(p) for p in paths if p and os.path.isdir(p)}):
        if not any(_inside(path, folder) for folder in kept):
            kept.append(path)
    return kept


def python_paths(project: Path, readable=()) -> list[str]:
    """What the server reads of the Python environment: the interpreter's prefixes, sys.path (but the folder
    the checker runs in), this project and ``readable``; never / itself or a folder holding the scratch."""
    here = os.getcwd()
    paths = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix, str(project), *readable,
             *(p for p in sys.path if p and os.path.abspath(p) != here)]
    return [p for p in _folders(paths) if p != "/"]


def _parents(paths) -> list[str]:
    """``--perms 0755 --dir`` for the folders above ``paths`` (bubblewrap would make them 0700: closed to the
    children, who run as another user)."""
    folders = dict.fromkeys(str(parent) for path in paths for parent in reversed(Path(path).parents))
    return [item for folder in folders if folder != "/" for item in ("--perms", "0755", "--dir", folder)]


def command(server: list[str], scratch: Path, project: Path, readable=()) -> list[str]:
    """bubblewrap's command around ``server`` (see the module doc)."""
    argv = ["bwrap", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent", "--new-session"]
    if privileged():
        argv += ["--cap-drop", "ALL", *(item for cap in ROOT_CAPABILITIES for item in ("--cap-add", cap))]
    else:
        argv += ["--unshare-user", "--cap-add", "CAP_SYS_ADMIN"]
    for path in SYSTEM:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    shown = [path for path in python_paths(project, readable) if not _inside(str(scratch), path)]
    argv += _parents([*shown, *DEVICES])
    for path in shown:
        argv += ["--ro-bind", path, path]
    for device in DEVICES:
        argv += ["--dev-bind", device, device]
    for number, name in enumerate(("stdin", "stdout", "stderr")):
        argv += ["--symlink", f"/proc/self/fd/{number}", f"/dev/{name}"]
    argv += ["--symlink", "/proc/self/fd", "/dev/fd", "--tmpfs", "/dev/shm", "--proc", "/proc", "--tmpfs", "/tmp",
             *_parents([scratch]), "--bind", str(scratch), str(scratch), "--chdir", str(scratch), "--", *server]
    return argv


# ----------------------------------------------------------------------------- inside the sandbox

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        number = ctypes.get_errno()
        raise OSError(number, f"{what}: {os.strerror(number)}")


def _unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def _mount(source: str | None, target: str, kind: str | None, flags: int, data: str | None = None) -> None:
    encoded = [None if text is None else text.encode() for text in (source, target, kind, data)]
    _check(_libc.mount(encoded[0], encoded[1], encoded[2], ctypes.c_ulong(flags), encoded[3]),
           f"mount {kind or source} on {target}")


def _tmpfs(target: str, size: str, mode: str = "1777") -> None:
    _mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={mode}")


def _prctl(option: int, value: int) -> None:
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl({option})")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def _drop_capabilities() -> None:
    """No effective, permitted or inheritable capability left (capset with zeros)."""
    _check(_libc.capset(ctypes.byref(_CapHeader(CAPABILITY_VERSION_3, 0)), (_CapData * 2)()), "capset")


_OWN_PID_NAMESPACE: list = []     # the server's: where it goes back after each fork


def fork() -> tuple[int, int]:
    """In the server: fork a child into a PID namespace of its own (step 1). (the child's pid, the read end of
    the pipe its end comes through) here; (0, the pipe's write end) in the child."""
    if not _OWN_PID_NAMESPACE:
        _OWN_PID_NAMESPACE.append(os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC))
    said, say = os.pipe()
    _unshare(CLONE_NEWPID)      # for the next child only: the server goes back to its own right after
    try:
        pid = os.fork()
    finally:
        if os.getpid() != 1:    # not in the child, process 1 of the new namespace
            _check(_libc.setns(_OWN_PID_NAMESPACE[0], CLONE_NEWPID), "setns")
    if pid == 0:
        os.close(said)
        return 0, say
    os.close(say)
    return pid, said


def returncode(said: int, own: int) -> int:
    """In the server, once the child has ended: the candidate's returncode, as the child wrote it (``own``, the
    child's, where it was killed before it could)."""
    os.set_blocking(said, False)
    try:
        text = os.read(said, 32)
    except BlockingIOError:
        text = b""
    return int(text) if text else own


def _chown_tree(folder: str, uid: int) -> None:
    """Everything in ``folder``, and it, to ``uid`` (bottom up: a root server has no right to enter a folder
    that is no longer root's)."""
    for root, folders, files in os.walk(folder, topdown=False):
        for name in folders + files:
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)
    os.chown(folder, uid, uid)


def _reap(candidate: int, say: int):
    """P1, process 1: reap whatever ends in the namespace; when the candidate's process ends, say how, and end."""
    while True:
        pid, raw = os.wait()
        if pid == candidate:
            os.write(say, str(os.waitstatus_to_exitcode(raw)).encode())
            os._exit(0)


def _become_nobody(privileged_: bool) -> None:
    """P2: uid and gid 65534 in a user namespace of its own, no capabilities, no_new_privs."""
    if privileged_:
        os.setgroups([])
        os.setresgid(NOBODY, NOBODY, NOBODY)
        os.setresuid(NOBODY, NOBODY, NOBODY)
        _prctl(PR_SET_DUMPABLE, 1)    # the change of uid made /proc/self root's; its maps are written next
    uid, gid = os.getuid(), os.getgid()
    _unshare(CLONE_NEWUSER)
    for name, text in (("uid_map", f"{NOBODY} {uid} 1"), ("setgroups", "deny"), ("gid_map", f"{NOBODY} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as file:
            file.write(text)
    _drop_capabilities()
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _keep_environment()


def _keep_environment() -> None:
    """Of the checker's environment, only what the child runs by (ENVIRONMENT): a token or a password in a
    variable is not candidate code's to read, nor to print into the student's feedback. HOME and TMPDIR are the
    child's private /tmp."""
    for name in list(os.environ):
        if name not in ENVIRONMENT and not name.startswith(ENVIRONMENT_PREFIXES):
            del os.environ[name]
    os.environ.update(HOME="/tmp", TMPDIR="/tmp")


def enter(folder: str, scratch: str, privileged_: bool, say: int) -> None:
    """In a child just forked by :func:`fork` (P1): steps 2 to 4 of the module doc. Returns in P2 only."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)     # (the server is outside this PID namespace: getppid() says 0)
    _unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    own = os.open(folder, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)   # opened in the new namespace, to bind
    _tmpfs("/tmp", TMP_SIZE)
    _tmpfs("/dev/shm", SHM_SIZE)
    if not _inside(scratch, "/tmp"):
        _tmpfs(scratch, "1m", "755")
    os.makedirs(folder, exist_ok=True)
    _mount(f"/proc/self/fd/{own}", folder, None, MS_BIND | MS_REC)
    os.close(own)
    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    if privileged_:
        _chown_tree(folder, NOBODY)
    candidate = os.fork()
    if candidate:
        _reap(candidate, say)
    os.close(say)
    _become_nobody(privileged_)


def probe(scratch: str, privileged_: bool) -> None:
    """In the server, once: set a child's sandbox up in a folder of its own and end; OSError with the reason if
    any step fails."""
    folder = tempfile.mkdtemp(prefix="probe-", dir=scratch)
    told, tell = os.pipe()
    pid, said = fork()
    if pid == 0:
        try:
            os.dup2(tell, 2)
            enter(folder, scratch, privileged_, said)
            os._exit(0 if os.getuid() == NOBODY else 1)
        except BaseException:  # noqa: BLE001 - the reason is read back below
            traceback.print_exc()
            os._exit(1)
    os.close(tell)
    _, raw = os.waitpid(pid, 0)
    code = returncode(said, os.waitstatus_to_exitcode(raw))
    os.close(said)
    with os.fdopen(told, "rb") as file:
        text = file.read().decode(errors="replace").strip()
    shutil.rmtree(folder, ignore_errors=True)
    if code != 0:
        last = text.splitlines()[-1] if text else f"returncode {code}"
        raise OSError(f"a child's sandbox cannot be set up inside bubblewrap: {last}")

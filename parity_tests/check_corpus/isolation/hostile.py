"""A submission that tries to get out of the sandbox (``--sandbox bwrap``): at its first call each function
tries one thing, prints ``blocked: ...`` with the error that stopped it, and then computes its layer correctly;
had the attempt worked it raises ``escaped: ...`` instead. Under the sandbox every function it defines passes.

Run it only under ``--sandbox bwrap``: outside the sandbox the attempts work (it connects, reads, writes and finds
processes to signal; it never signals one, having found it can). The tests put beside it, in aims.json, what to
aim at: a port the test listens on, a file in the test's $HOME, the submission's own file, a variable of the
checker's environment, a file to create outside its folder, the checker's process id, and a marker for the process
it leaves behind.
"""

import json
import os
import signal
import socket
import subprocess
import sys

import torch

_tried = set()      # the functions that have made their attempt (one child checks one function)


def _aim(name: str) -> str:
    with open("aims.json") as file:
        return json.load(file)[name]


def _first_call(name: str) -> bool:
    first = name not in _tried
    _tried.add(name)
    return first


def _blocked(what: str, attempt) -> None:
    """Try ``attempt``: print how it was stopped, or raise if it was not."""
    try:
        attempt()
    except OSError as error:
        print(f"blocked: {what}: {type(error).__name__}: {error}", flush=True)
        return
    raise RuntimeError(f"escaped: {what}")


def _read(path: str) -> None:
    with open(path, "rb") as file:
        file.read()


def _write(path: str) -> None:
    with open(path, "w") as file:
        file.write("written by hostile.py\n")


def _project_file() -> str:
    return os.path.join(os.path.dirname(torch.__file__), "hostile.txt")


def relu_vector(a, device):
    if _first_call("relu_vector"):
        address = ("127.0.0.1", int(_aim("port")))
        _blocked(f"a TCP connection to {address}", lambda: socket.create_connection(address, timeout=5).close())
    return a.clamp(min=0)


def relu_scalar(a, device):
    if _first_call("relu_scalar"):
        _blocked("reading a file in the user's home", lambda: _read(_aim("secret")))
        _blocked("reading the submission where it was handed in", lambda: _read(_aim("submission")))
        if _aim("variable") in os.environ:
            raise RuntimeError(f"escaped: the checker's environment holds {_aim('variable')}")
        print(f"blocked: the checker's environment: no {_aim('variable')} in it", flush=True)
        scratch = os.path.dirname(os.path.dirname(os.getcwd()))     # the folder holding every child's folder
        others = [name for name in os.listdir(scratch) if name != os.path.basename(os.path.dirname(os.getcwd()))]
        if others:
            raise RuntimeError(f"escaped: the other children's folders are in sight: {others}")
        print(f"blocked: the other children's folders: {scratch} holds only this child's", flush=True)
    return a.clamp(min=0)


def pool2d_vector(a, device):
    if _first_call("pool2d_vector"):
        _blocked("writing a file outside its folder", lambda: _write(_aim("outside")))
        _blocked("writing into the Python environment", lambda: _write(_project_file()))
        _blocked("writing beside the submission", lambda: _write(_aim("submission") + ".new"))
    n_batch, channels, s_in, _ = a.shape
    return a.reshape(n_batch, channels, s_in // 2, 2, s_in // 2, 2).amax(dim=(3, 5))


def reshape_vector(a, device):
    if _first_call("reshape_vector"):
        checker = int(_aim("checker"))
        _blocked(f"finding the checker's process {checker}", lambda: os.kill(checker, 0))
        _blocked(f"killing the checker's process {checker}", lambda: os.kill(checker, signal.SIGKILL))
    return a.reshape(a.shape[0], -1)


def fc_layer_vector(a, weight, bias, device):
    if _first_call("fc_layer_vector"):
        # kill(-1, 0) reaches every process this one may signal but itself and its init: the other children,
        # the checker, anything of the user's; ESRCH when there is none. Only then does it send SIGKILL to them.
        _blocked("finding another process to signal", lambda: os.kill(-1, 0))
        _blocked("killing every other process", lambda: os.kill(-1, signal.SIGKILL))
    return a @ weight.t() + bias


def reshape_scalar(a, device):
    if _first_call("reshape_scalar"):
        leftover = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)",
                                     _aim("marker")], start_new_session=True,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"started a process in a session of its own, to outlive the check: pid {leftover.pid}", flush=True)
    return a.reshape(a.shape[0], -1)

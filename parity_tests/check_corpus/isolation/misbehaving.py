"""A submission whose every function misbehaves in its own way: the checker must survive each one and still
check the others. The comment on each says what the checker should report. The tests put it in a folder
beside a simple_conv_net.py and a random.py of the student's own, which must not hide the checker's modules."""

import ctypes
import os
import subprocess
import sys
import time
from pathlib import Path

import torch


def conv2d_scalar(x_in, conv_weight, conv_bias, device):
    # a process of its own (its command line marked with the words the tests put in leftover_marker beside this
    # file), then an endless loop: timeout, both killed
    marker = Path("leftover_marker").read_text() if Path("leftover_marker").exists() else "leftover"
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", marker])
    print(f"started pid {child.pid}", flush=True)
    while True:
        pass


def pool2d_scalar(a, device):
    ctypes.string_at(0)  # reads address 0: crashed, SIGSEGV


def relu_scalar(a, device):
    sys.exit(3)  # caught in the child: error, "the code called sys.exit(3)"


def reshape_scalar(a, device):
    os._exit(4)  # cannot be caught: crashed, exit code 4


def fc_layer_scalar(a, weight, bias, device):
    hoard = []
    while True:  # runaway allocation: the memory limit stops it (error: "can't allocate memory")
        hoard.append(torch.empty(64 << 20, dtype=torch.uint8))


def conv2d_vector(x_in, conv_weight, conv_bias, device):
    print(("conv2d_vector is thinking " * 40 + "\n") * 256)  # a print flood, far more than a pipe holds: drained
    windows = x_in.unfold(2, conv_weight.shape[2], 1).unfold(3, conv_weight.shape[3], 1)   # and cut, then: pass
    return torch.einsum("nchwij,fcij->nfhw", windows, conv_weight) + conv_bias.reshape(1, -1, 1, 1)


def pool2d_vector(a, device):
    for name in os.listdir("."):  # deletes everything in its working directory (its copy), then works: pass
        os.remove(name)
    n_batch, channels, s_in, _ = a.shape
    windows = a.reshape(n_batch, channels, s_in // 2, 2, s_in // 2, 2)
    return windows.amax(dim=(3, 5))


_done = set()   # what a function did at its first call


def fc_layer_vector(a, weight, bias, device):
    if "closed" not in _done:  # closes every file descriptor at the first call, and carries on: pass
        os.closerange(0, os.sysconf("SC_OPEN_MAX"))
        _done.add("closed")
        time.sleep(0.5)
    return a @ weight.t() + bias


def relu_vector(a, device):
    if "redirected" not in _done:  # sends its stdout and stderr to /dev/null at the first call: pass
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        _done.add("redirected")
        time.sleep(0.5)
    return a.clamp(min=0)


def _results_folders():
    """Where the child writes its results, found as a submission can: in its arguments, or beside its working
    directory."""
    found = [Path(arg) for arg in sys.argv[1:]] + [Path("..") / "results"]
    return {path.resolve() for path in found if path.name == "results" and path.is_dir()}


def reshape_vector(a, device):
    for folder in _results_folders():  # a FIFO among the results, which blocks whoever opens it: crashed
        os.mkfifo(folder / "zz.pt")
    return a.reshape(a.shape[0], -1)


def im2col(X, kernel_size, device):
    for folder in _results_folders():  # a file that is no record: crashed, its results could not be read
        torch.save(7, folder / "call-zzz.pt")
    return X


def diff_mse(x, y):
    """Returns nonsense, having written records of the right answers and a 'done' for the checker (the
    request read from where the child got it, if it can): crashed, its results could not be read."""
    from simple_conv_net.check import runner

    for folder in _results_folders():
        try:
            calls = torch.load(sys.argv[1], weights_only=True)["calls"]
        except Exception:  # noqa: BLE001 - no request where it looked
            calls = []
        for index, call in enumerate(calls):
            record = runner.run_call(lambda x, y: ((x - y) ** 2).mean().item(), call)
            torch.save(record, folder / f"call-{index:03d}.pt")
        torch.save({}, folder / "done.pt")
    os._exit(0)


def conv_weight2rows(conv_weight):
    input("press enter: ")  # stdin is closed: error, EOFError

"""A submission whose every function misbehaves in its own way: the checker must survive each one and still
check the others. The comment on each says what the checker should report."""

import ctypes
import os
import subprocess
import sys

import torch


def conv2d_scalar(x_in, conv_weight, conv_bias, device):
    child = subprocess.Popen(["sleep", "600"])  # a process of its own, then an endless loop: timeout, both killed
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
    while True:  # print flood: drained and cut, then the timeout
        print("conv2d_vector is thinking " * 40)


def pool2d_vector(a, device):
    for name in os.listdir("."):  # deletes everything in its working directory (its copy), then works: pass
        os.remove(name)
    return torch.nn.functional.max_pool2d(a, 2)


def fc_layer_vector(a, weight, bias, device):
    return a @ weight.t() + bias


def conv_weight2rows(conv_weight):
    input("press enter: ")  # stdin is closed: error, EOFError

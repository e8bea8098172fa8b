"""A submission whose relu_vector names its process (the name /proc/PID/comm shows, from outside any sandbox too)
with the words the tests put in sleeper_name beside this file, and sleeps: the tests stop the checker while it
sleeps, and look for what is left."""

import ctypes
import time
from pathlib import Path

PR_SET_NAME = 15


def relu_vector(a, device):
    ctypes.CDLL(None).prctl(PR_SET_NAME, Path("sleeper_name").read_text().encode(), 0, 0, 0)
    time.sleep(600)
    return a.clamp(min=0)

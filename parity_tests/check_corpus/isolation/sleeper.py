"""A submission whose relu_vector names its process $SLEEPER_NAME (the name /proc/PID/comm shows, from outside
any sandbox too) and sleeps: the tests stop the checker while it sleeps, and look for what is left."""

import ctypes
import os
import time

PR_SET_NAME = 15


def relu_vector(a, device):
    ctypes.CDLL(None).prctl(PR_SET_NAME, os.environ["SLEEPER_NAME"].encode(), 0, 0, 0)
    time.sleep(600)
    return a.clamp(min=0)

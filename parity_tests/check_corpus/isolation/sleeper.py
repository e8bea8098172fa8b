"""A submission whose relu_vector sleeps, having noted its process id and working directory in the file
$SLEEPER_NOTE: the tests stop the checker while it sleeps, and look for what is left."""

import os
import time


def relu_vector(a, device):
    with open(os.environ["SLEEPER_NOTE"], "a") as note:
        note.write(f"{os.getpid()} {os.getcwd()}\n")
    time.sleep(600)
    return a.clamp(min=0)

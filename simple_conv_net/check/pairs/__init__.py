"""Forward/backward pairs (the cs231n form): the calls the checker makes of each, and how it judges them.

Calls. Every function is called on the assignment's own cases (the notebooks' shapes and
parameters: square inputs, stride 2 pad 1 and stride 1 pad 1 convolutions, 2x2 stride 2 pooling,
batch norm on ``5 randn + 12``), which decide pass or fail, and on general cases (non-square
inputs and kernels, a stride other than the kernel, overlapping pool windows, pad 0 and 2, N = 1),
which are reported and decide only under ``--strict``. Max pooling also gets tied maxima (integer
inputs), softmax_loss scores near 1000, batch norm and dropout their test mode: those decide too.
A backward is called on the cache its own forward returned, on the same inputs, with a random
upstream gradient ``dout``; a loss returns its gradient of the averaged loss.

Checks (the first word is the kind a rubric counts; general cases' checks start with "general"):

type         the function returns an array where the API has one (not None)
shape        each returned array has native's shape
values       out (or the loss), and batch norm's running statistics written back, against native
             PyTorch in float64: equal within 1e-9 (relative to the largest entry) passes; within
             1e-5 passes with a note (a convention: eps outside the square root); beyond fails
gradient     each returned gradient against autograd of the native forward with the same dout
consistency  each returned gradient against central differences of the candidate's own forward
             (diagnostic: it tells a wrong backward from the right backward of a wrong forward;
             within a time budget per call, see forms.cs231n.FD_SECONDS)
arguments    no argument changed in place (the running statistics a forward writes back, and
             keys a forward adds to its parameter dict, are allowed)
finite       softmax_loss stays finite at large scores
convention   dropout's p read as the drop probability in a 2018+ file (see below)

Dropout is random, so it is judged by what its output must be: each entry 0 or x / p_keep, the
share kept p_keep (within 5 binomial standard deviations), test mode the identity, and the
backward ``dout * mask`` with the mask its own forward drew. Which probability p is (the drop
probability in 2016-17 files, the keep probability from 2018, told by layer or group norm being
defined) is said; the other convention fails a 2018+ file.

Every finding is tested numerically against a hypothesis (dw transposed, db not summed, a missing
1/N, ...; see :mod:`.why`), and an exception is explained by :mod:`..drift` when it is code
written for older Python or NumPy.

cases     the calls: the assignment's cases and the general ones               :mod:`.cases`
compare   relative error, and whether two arrays are close                     :mod:`.compare`
judge     the checks of each call, a function's status, diagnoses and notes     :mod:`.judge`
why       the hypotheses that explain a wrong output, each tested numerically   :mod:`.why`
"""

from .cases import DECISIVE, calls
from .judge import analyse

__all__ = ["DECISIVE", "analyse", "calls"]

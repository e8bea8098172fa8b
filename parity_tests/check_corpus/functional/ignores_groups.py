"""A custom-op module in the functional form whose conv2d takes groups and forgets the group's channel offset.

Each filter of group g should read input channels g*C_in/groups .. (g+1)*C_in/groups - 1; here every filter reads
the first group's, channels 0 .. C_in/groups - 1 (a loop over ci = 0 .. weight.shape[1] - 1 indexing the input
with ci alone). Right at groups=1. The checker's groups hypothesis.
"""

import vector_ops
from vector_ops import batch_norm, flatten, linear, log_softmax, max_pool2d, nll_loss, relu  # noqa: F401


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    first_group = input[:, :weight.shape[1]]                    # the input channels of group 0, for every group
    return vector_ops.conv2d(first_group, weight, bias, stride, padding, dilation, 1)

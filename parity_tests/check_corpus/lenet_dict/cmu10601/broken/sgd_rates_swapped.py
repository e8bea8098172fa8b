"""sgd_momentum updates w with b_rate and b with w_rate: the learning rates swapped (testLeNet.py gives the
bias twice the weights' rate)."""

_correct_sgd_momentum = sgd_momentum


def sgd_momentum(w_rate, b_rate, mu, decay, params, param_winc, param_grad):
    return _correct_sgd_momentum(b_rate, w_rate, mu, decay, params, param_winc, param_grad)

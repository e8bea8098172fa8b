"""softmax_loss divides dx by N once more after averaging: dx is N times too small (the loss right)."""

_correct_softmax_loss = softmax_loss


def softmax_loss(x, y):
    loss, dx = _correct_softmax_loss(x, y)
    return loss, dx / x.shape[0]

"""softmax_loss averages the loss over N but not dx: dx is N times too large (the loss right)."""

_correct_softmax_loss = softmax_loss


def softmax_loss(x, y):
    loss, dx = _correct_softmax_loss(x, y)
    return loss, dx * x.shape[0]

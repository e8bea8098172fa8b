"""softmax_loss returns its loss through np.asscalar, removed in NumPy 1.23 (use .item()): AttributeError."""

_correct_softmax_loss = softmax_loss


def softmax_loss(x, y):
    loss, dx = _correct_softmax_loss(x, y)
    return np.asscalar(np.array(loss)), dx

"""The LeNet class as a starter gives it, before any work (written for the checker's tests): __init__
defines no layer and forward returns nothing. It constructs, has no parameters and returns None;
every item of lenet-hw5 scores 0."""


class LeNet(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        # TODO: define the layers of LeNet here

    def forward(self, x):
        # TODO: apply them to x and return the logits
        pass

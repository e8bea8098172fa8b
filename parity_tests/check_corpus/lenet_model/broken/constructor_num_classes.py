"""LeNet whose constructor names its argument num_classes: the handout's trainer, LeNet(n_classes=...),
cannot build it (TypeError: unexpected keyword argument 'n_classes')."""


class LeNet(LeNet):
    def __init__(self, num_classes=10):
        super().__init__(num_classes)

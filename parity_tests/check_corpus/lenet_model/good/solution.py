"""COM S 573 homework 5, question 4(a) (seed 001): LeNet in solution.py, completed (written for the
checker's tests; not the course's file).

For images [N, 3, 32, 32] (CIFAR-10): convolution 6 (5 x 5), ReLU, max pooling 2 x 2; convolution 16
(5 x 5), ReLU, max pooling 2 x 2; reshape to a vector of 16 * 5 * 5 = 400; fully connected 120, ReLU;
fully connected 84, ReLU; fully connected n_classes: the logits [N, n_classes]. 62,006 parameters for
ten classes. Only torch.nn's modules are used, as the handout asks; the trainer builds it as
LeNet(n_classes=n_classes).
"""
import torch.nn as nn


class LeNet(nn.Module):
    def __init__(self, n_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, kernel_size=5)          # [N, 6, 28, 28]
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)         # [N, 16, 10, 10]
        self.pool = nn.MaxPool2d(kernel_size=2, stride=2)    # halves each side
        self.relu = nn.ReLU()
        self.flatten = nn.Flatten()                          # [N, 16 * 5 * 5]
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, n_classes)

    def forward(self, x):
        """x [N, 3, 32, 32] -> logits [N, n_classes]."""
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.flatten(x)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)

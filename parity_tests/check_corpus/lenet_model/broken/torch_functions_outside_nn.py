"""LeNet's forward calls torch.relu and torch.max_pool2d, functions of torch, not of torch.nn (the only
APIs the handout allows): the same numbers, an API the handout does not allow."""
import torch


class LeNet(LeNet):
    def forward(self, x):
        x = torch.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = torch.max_pool2d(torch.relu(self.conv2(x)), 2)
        x = torch.relu(self.fc1(self.flatten(x)))
        return self.fc3(torch.relu(self.fc2(x)))

"""LeNet flattening [N, 16, 5, 5] with the channel last (a permute to [N, 5, 5, 16] first, as for a
TensorFlow layout): the 400 features reach fc1 in another order."""


class LeNet(LeNet):
    def forward(self, x):
        x = self.pool(self.relu(self.conv1(x)))
        x = self.pool(self.relu(self.conv2(x)))
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)
        x = self.relu(self.fc1(x))
        x = self.relu(self.fc2(x))
        return self.fc3(x)

"""A small convolutional network for the 8x8 handwritten digits of scikit-learn."""

from __future__ import annotations

import torch
from torch import nn

from trustlab.core.models._base import register_architecture
from trustlab.core.params import Integer, check_param

__all__ = ["DigitsCNN"]

IMAGE_SIZE = 8


@register_architecture("digits-cnn")
class DigitsCNN(nn.Module):
    """Two 3x3 convolutions, one max-pool and two linear layers for 8x8 images.

    ``conv(32) -> ReLU -> conv(64) -> ReLU -> maxpool(2) -> linear(128) -> ReLU -> linear``.
    It reaches about 98 % test accuracy on scikit-learn's digits in a few seconds on a CPU,
    which makes it the default target of the quick tasks.

    Parameters
    ----------
    num_classes : int, default=10
        Number of output logits.
    in_channels : int, default=1
        Number of image channels.

    Shapes
    ------
    - input: ``(N, in_channels, 8, 8)``, pixel values as the data set scales them
    - output: ``(N, num_classes)`` logits

    Examples
    --------
    >>> import torch
    >>> DigitsCNN()(torch.zeros(2, 1, 8, 8)).shape
    torch.Size([2, 10])
    """

    def __init__(self, *, num_classes: int = 10, in_channels: int = 1) -> None:
        super().__init__()
        self.num_classes = check_param(
            num_classes, Integer(low=1), name="num_classes", owner="digits-cnn"
        )
        self.in_channels = check_param(
            in_channels, Integer(low=1), name="in_channels", owner="digits-cnn"
        )
        self.conv1 = nn.Conv2d(in_channels, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(64 * (IMAGE_SIZE // 2) ** 2, 128)
        self.fc2 = nn.Linear(128, num_classes)
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.conv1(x))
        x = self.pool(self.relu(self.conv2(x)))
        x = self.relu(self.fc1(torch.flatten(x, 1)))
        return self.fc2(x)

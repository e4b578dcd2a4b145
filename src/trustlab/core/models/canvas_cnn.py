"""A small convolutional network that finds a digit anywhere on a larger canvas."""

from __future__ import annotations

import torch
from torch import nn

from trustlab.core.models._base import register_architecture
from trustlab.core.params import Integer, check_param

__all__ = ["CanvasCNN"]


@register_architecture("canvas-cnn")
class CanvasCNN(nn.Module):
    """Three 3x3 convolutions, global max pooling and a linear layer, for images of any size.

    ``conv(w) -> ReLU -> maxpool(2) -> conv(2w) -> ReLU -> conv(2w) -> ReLU -> global max pool
    -> linear``. Global pooling makes the network indifferent to where the digit lies, which
    suits the ``digits-canvas`` data set; each ReLU is its own module (DeepLIFT's rules need
    that) and ``features`` ends with the last convolution (Grad-CAM's layer).

    Parameters
    ----------
    num_classes : int, default=10
        Number of output logits.
    in_channels : int, default=1
        Number of image channels.
    width : int, default=16
        Channels of the first convolution.

    Shapes
    ------
    - input: ``(N, in_channels, H, W)`` with H, W >= 2
    - output: ``(N, num_classes)`` logits

    Examples
    --------
    >>> import torch
    >>> CanvasCNN()(torch.zeros(2, 1, 24, 24)).shape
    torch.Size([2, 10])
    """

    def __init__(self, *, num_classes: int = 10, in_channels: int = 1, width: int = 16) -> None:
        super().__init__()
        owner = "canvas-cnn"
        self.num_classes = check_param(num_classes, Integer(low=1), name="num_classes", owner=owner)
        self.in_channels = check_param(in_channels, Integer(low=1), name="in_channels", owner=owner)
        self.width = check_param(width, Integer(low=1), name="width", owner=owner)
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 2 * width, kernel_size=3, padding=1),
            nn.ReLU(),
        )
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.classifier = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))

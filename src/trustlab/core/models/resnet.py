"""ResNet-18 for 32x32 images, with torchvision's parameter names.

He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
"""

from __future__ import annotations

import torch
from torch import nn

from trustlab.core.models._base import register_architecture
from trustlab.core.params import Integer, check_param

__all__ = ["BasicBlock", "ResNet18"]


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1 projection) shortcut.

    Laid out exactly like ``torchvision.models.resnet.BasicBlock``: ``conv1``, ``bn1``,
    ``conv2``, ``bn2`` and, when the shape changes, ``downsample = Sequential(conv1x1, bn)``.

    Parameters
    ----------
    in_planes : int
        Input channels.
    planes : int
        Output channels.
    stride : int, default=1
        Stride of the first convolution and of the shortcut.

    Examples
    --------
    >>> import torch
    >>> BasicBlock(in_planes=64, planes=128, stride=2)(torch.zeros(1, 64, 8, 8)).shape
    torch.Size([1, 128, 4, 4])
    """

    expansion = 1

    def __init__(self, *, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_planes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


@register_architecture("resnet18")
class ResNet18(nn.Module):
    """CIFAR-style ResNet-18 whose state dict matches ``torchvision.models.resnet18``.

    The only change from torchvision is the usual CIFAR adaptation: the stem is a 3x3,
    stride-1 convolution with no max-pool, so ``conv1.weight`` has shape
    ``(64, in_channels, 3, 3)`` instead of ``(64, 3, 7, 7)``. All other parameter and buffer
    names and shapes (``bn1``, ``layer1.0.conv1``, ..., ``layer2.0.downsample.0``, ``fc``)
    are torchvision's, so a torchvision-style CIFAR checkpoint loads with ``strict=True``.
    Initialisation follows torchvision (Kaiming-normal convolutions, unit batch-norm scale).

    Parameters
    ----------
    num_classes : int, default=10
        Number of output logits.
    in_channels : int, default=3
        Number of image channels.

    Shapes
    ------
    - input: ``(N, in_channels, H, W)``, typically ``H = W = 32``
    - output: ``(N, num_classes)`` logits

    Examples
    --------
    >>> import torch
    >>> ResNet18()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """

    def __init__(self, *, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        self.num_classes = check_param(
            num_classes, Integer(low=1), name="num_classes", owner="resnet18"
        )
        self.in_channels = check_param(
            in_channels, Integer(low=1), name="in_channels", owner="resnet18"
        )
        self.conv1 = _conv3x3(in_channels, 64)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(64, 64, stride=1)
        self.layer2 = self._make_layer(64, 128, stride=2)
        self.layer3 = self._make_layer(128, 256, stride=2)
        self.layer4 = self._make_layer(256, 512, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.constant_(module.weight, 1)
                nn.init.constant_(module.bias, 0)

    @staticmethod
    def _make_layer(in_planes: int, planes: int, *, stride: int) -> nn.Sequential:
        return nn.Sequential(
            BasicBlock(in_planes=in_planes, planes=planes, stride=stride),
            BasicBlock(in_planes=planes, planes=planes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

"""Linear classifiers whose adversarial examples can be computed by hand."""

from __future__ import annotations

import torch
from torch import nn


def linear_classifier(weight: list[list[float]], bias: list[float] | None = None) -> nn.Module:
    """``z = W x + b`` on flattened inputs, with the given rows of ``W``; frozen, in eval mode."""
    w = torch.tensor(weight, dtype=torch.float32)
    layer = nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(torch.zeros(w.shape[0]) if bias is None else torch.tensor(bias))
    model = nn.Sequential(nn.Flatten(), layer)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


#: Two classes on four features; class 1 minus class 0 has the weights (1, -2, 0.5, -0.25).
TWO_CLASS_WEIGHT = [[0.0, 0.0, 0.0, 0.0], [1.0, -2.0, 0.5, -0.25]]

"""Model architectures, looked up by name.

Every architecture is registered with :func:`register_architecture` and built with
:func:`build_model`, which records the name and the full arguments on the model so that
``trustlab.core.weights`` can save and rebuild it.

Examples
--------
>>> from trustlab.core.models import build_model, list_architectures
>>> list_architectures()
['canvas-cnn', 'digits-cnn', 'mlp', 'resnet18', 'tabular']
>>> model = build_model("digits-cnn")
>>> model.trustlab_architecture
{'name': 'digits-cnn', 'arguments': {'in_channels': 1, 'num_classes': 10}}
"""

from __future__ import annotations

from trustlab.core.models._base import (
    ARCHITECTURE_ATTRIBUTE,
    ARCHITECTURES,
    build_model,
    list_architectures,
    register_architecture,
    resolve_arguments,
)
from trustlab.core.models.canvas_cnn import CanvasCNN
from trustlab.core.models.digits_cnn import DigitsCNN
from trustlab.core.models.mlp import MLP
from trustlab.core.models.resnet import BasicBlock, ResNet18
from trustlab.core.models.tabular import TabularNet
from trustlab.core.models.tabular_training import fit_tabular

__all__ = [
    "ARCHITECTURES",
    "ARCHITECTURE_ATTRIBUTE",
    "MLP",
    "BasicBlock",
    "CanvasCNN",
    "DigitsCNN",
    "ResNet18",
    "TabularNet",
    "build_model",
    "fit_tabular",
    "list_architectures",
    "register_architecture",
    "resolve_arguments",
]

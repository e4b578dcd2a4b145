"""trustlab: a lab for trustworthy machine learning on PyTorch.

>>> import trustlab
>>> model = trustlab.load_model("target.safetensors")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["__version__", "build_model", "load_dataset", "load_model", "save_model"]

if TYPE_CHECKING:
    from trustlab.core.data import load_dataset
    from trustlab.core.models import build_model
    from trustlab.core.weights import load_model, save_model

_LAZY = {
    "load_model": "trustlab.core.weights",
    "save_model": "trustlab.core.weights",
    "build_model": "trustlab.core.models",
    "load_dataset": "trustlab.core.data",
}


def __getattr__(name: str) -> Any:
    # Imported on first use, so that `trustlab.client` and the CLI start without torch.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'trustlab' has no attribute {name!r}")

"""Captum, imported on first use with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

MSG_NO_CAPTUM = (
    "trustlab.explain computes attributions with Captum, which is not installed: "
    "pip install 'trustlab[explain]'."
)


def captum_module(name: str = "captum.attr") -> ModuleType:
    """Import a Captum module (``captum.attr`` or ``captum.metrics``).

    Raises
    ------
    ImportError
        If Captum is missing; the message names the ``explain`` extra.
    """
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ImportError(MSG_NO_CAPTUM) from err

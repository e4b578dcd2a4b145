"""Hostile files for tests: pickles that would run a shell command when unpickled."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import torch
from torch import nn


class Exploit:
    """Unpickling this runs a shell command that creates a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def write_hostile_state_dict(path: Path, *, model: nn.Module, marker: Path) -> Path:
    """A ``.pt`` file with ``model``'s real weights plus an entry that runs code if unpickled."""
    payload: dict[str, object] = dict(model.state_dict())
    payload["evil"] = Exploit(marker)
    torch.save(payload, path)
    return path

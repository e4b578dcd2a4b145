"""trustlab.explain imports without Captum, and says which extra to install when it is used."""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCK_CAPTUM = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] == "captum":
            raise ImportError(f"{name} is blocked for this test")
        return None

sys.meta_path.insert(0, Block())
import torch
import trustlab.explain
from trustlab.explain import explain
try:
    explain(model=torch.nn.Linear(2, 2), x=torch.ones(1, 2))
except ImportError as err:
    print(err)
"""


@pytest.mark.slow
def test_explain_imports_without_captum_and_names_the_extra() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_CAPTUM], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'trustlab[explain]'" in done.stdout

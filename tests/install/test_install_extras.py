"""trustlab imports and serves on SQLite without its optional extras (psycopg, opacus)."""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCK_PSYCOPG = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in {"psycopg", "psycopg2", "psycopg_binary", "opacus"}:
            raise ImportError(f"{name} is blocked for this test")
        return None

sys.meta_path.insert(0, Block())
import trustlab, trustlab.client, trustlab.cli, trustlab.privacy, trustlab.tasks
import trustlab.privacy.audit, trustlab.privacy.dp
from trustlab.server import Settings, create_app
from trustlab.server.db import make_engine, upgrade
upgrade(make_engine("sqlite://"))
print("ok")
"""


@pytest.mark.slow
def test_imports_without_optional_extras() -> None:
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_PSYCOPG], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_the_client_does_not_import_torch() -> None:
    code = "import sys, trustlab.client; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"

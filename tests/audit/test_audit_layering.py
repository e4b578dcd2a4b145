"""The audit sits on core and the pillars only (DESIGN.md's layout): never the server, the task
kinds or the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_layering import PACKAGE, PILLARS, ROOT, trustlab_imports

ALLOWED = ("trustlab.core", "trustlab.audit", *(f"trustlab.{pillar}" for pillar in PILLARS))


@pytest.mark.parametrize(
    "path",
    sorted((PACKAGE / "audit").rglob("*.py")),
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_the_audit_imports_only_core_and_the_pillars(path: Path) -> None:
    bad = [
        f"line {line}: {name}"
        for line, name in trustlab_imports(path)
        if name != ROOT and not any(name == a or name.startswith(a + ".") for a in ALLOWED)
    ]
    assert not bad, f"{path.relative_to(PACKAGE)} imports {bad}"

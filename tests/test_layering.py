"""The dependency rules of the package layout, read from the import statements of every module.

* The server depends on the task-kind contract (``trustlab.tasks`` and ``trustlab.tasks.base``)
  and on ``trustlab.core``, never on one kind's module or on a pillar.
* A pillar imports nothing of trustlab but ``trustlab.core`` and its own package.

Both may import the root package ``trustlab`` (its version and lazy aliases of core).

Every import counts, including those inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import trustlab

PACKAGE = Path(trustlab.__file__).parent
PILLARS = (
    "privacy",
    "extraction",
    "robustness",
    "fairness",
    "explain",
    "uncertainty",
    "provenance",
)
#: The root package (``__version__`` and lazy aliases of core), which every layer may import.
ROOT = "trustlab"
#: What the server may import of trustlab besides core and itself: the task contract and the
#: API schemas.
SERVER_ALLOWED = (ROOT, "trustlab.tasks", "trustlab.tasks.base", "trustlab.schemas")
SERVER_ALLOWED_PACKAGES = ("trustlab.core", "trustlab.server")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _resolve(node: ast.ImportFrom, module: str, *, is_package: bool) -> str:
    """The absolute module an ``ImportFrom`` reads from (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_in(source: str, *, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """``(line, module)`` for every trustlab module that the code of ``module`` imports.

    ``from trustlab.x import y`` gives ``trustlab.x.y`` when that is a module or package, so
    ``from trustlab.tasks import extraction`` is caught as well as ``import
    trustlab.tasks.extraction``.
    """
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name)
                for alias in node.names
                if alias.name.split(".")[0] == "trustlab"
            ]
        elif isinstance(node, ast.ImportFrom):
            origin = _resolve(node, module, is_package=is_package)
            if origin.split(".")[0] != "trustlab":
                continue
            for alias in node.names:
                candidate = f"{origin}.{alias.name}"
                location = PACKAGE.parent.joinpath(*candidate.split("."))
                is_module = location.is_dir() or location.with_suffix(".py").is_file()
                found.append((node.lineno, candidate if is_module else origin))
    return found


def trustlab_imports(path: Path) -> list[tuple[int, str]]:
    """:func:`imports_in` for the module in the file ``path``."""
    return imports_in(
        path.read_text(encoding="utf-8"),
        module=_module_name(path),
        is_package=path.name == "__init__.py",
    )


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("path", _modules("server"), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_the_server_imports_only_the_task_contract_and_core(path: Path) -> None:
    bad = [
        f"line {line}: {name}"
        for line, name in trustlab_imports(path)
        if name not in SERVER_ALLOWED
        and not any(_within(name, package) for package in SERVER_ALLOWED_PACKAGES)
    ]
    assert not bad, (
        f"{path.relative_to(PACKAGE)} imports {bad}; the server may import only "
        f"{', '.join(SERVER_ALLOWED)} and {', '.join(SERVER_ALLOWED_PACKAGES)} (move what it "
        "needs of a task kind into the contract in trustlab/tasks/base.py)"
    )


@pytest.mark.parametrize(
    "path",
    [path for pillar in PILLARS if (PACKAGE / pillar).is_dir() for path in _modules(pillar)],
    ids=lambda p: str(p.relative_to(PACKAGE)),
)
def test_a_pillar_imports_only_core_and_itself(path: Path) -> None:
    pillar = "trustlab." + path.relative_to(PACKAGE).parts[0]
    bad = [
        f"line {line}: {name}"
        for line, name in trustlab_imports(path)
        if not (name == ROOT or _within(name, "trustlab.core") or _within(name, pillar))
    ]
    assert not bad, (
        f"{path.relative_to(PACKAGE)} imports {bad}; a pillar may import only trustlab.core "
        f"and {pillar}"
    )


def test_the_checks_see_every_spelling_of_an_import() -> None:
    source = (
        "import trustlab.tasks.extraction\n"
        "from trustlab.tasks import fairness\n"
        "from trustlab.tasks.membership import MembershipInference\n"
        "from ..tasks.robustness import Robustness\n"
        "from trustlab.tasks import TaskKind\n"
        "def lazy():\n"
        "    from trustlab.privacy import LossThreshold\n"
    )
    names = [name for _, name in imports_in(source, module="trustlab.server.probe")]
    assert names == [
        "trustlab.tasks.extraction",
        "trustlab.tasks.fairness",
        "trustlab.tasks.membership",
        "trustlab.tasks.robustness",
        "trustlab.tasks",
        "trustlab.privacy",
    ]

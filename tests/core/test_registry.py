"""The one registry type every family of trustlab is looked up in."""

from __future__ import annotations

import pytest

from trustlab.core.errors import ConfigurationError, DuplicateNameError, UnknownNameError
from trustlab.core.registry import Registry


class _Member:
    def __init__(self, *, eps: float = 0.1, steps: int = 10) -> None:
        self.eps = eps
        self.steps = steps


def test_add_get_and_names() -> None:
    registry: Registry[type[_Member]] = Registry("attack")
    registry.add("b", _Member)
    registry.register("a")(_Member)
    assert registry.names() == ["a", "b"] and list(registry) == ["a", "b"]
    assert "a" in registry and len(registry) == 2
    registry.remove("a")
    assert registry.names() == ["b"]


def test_duplicates_and_unknown_names_are_explained() -> None:
    registry: Registry[type[_Member]] = Registry("attack")
    registry.add("pgd", _Member)
    with pytest.raises(DuplicateNameError, match="attack 'pgd' is already registered"):
        registry.add("pgd", _Member)
    with pytest.raises(UnknownNameError, match=r"Unknown attack .pdg.\. Known attacks: pgd\."):
        registry.get("pdg")


def test_build_passes_options_and_names_unknown_ones() -> None:
    registry: Registry[type[_Member]] = Registry("attack")
    registry.add("pgd", _Member)
    member = registry.build("pgd", {"eps": 0.3})
    assert (member.eps, member.steps) == (0.3, 10)
    assert registry.build("pgd").eps == 0.1
    with pytest.raises(ConfigurationError, match=r"Unknown option.*.epsilon.*.eps., .steps."):
        registry.build("pgd", {"epsilon": 0.3})
    with pytest.raises(ConfigurationError, match="must be a mapping"):
        registry.build("pgd", [("eps", 0.3)])  # type: ignore[arg-type]


def test_build_names_missing_options() -> None:
    def factory(*, root: str, split: str = "train") -> tuple[str, str]:
        return root, split

    registry: Registry[object] = Registry("data set")
    registry.add("cifar10", factory)
    assert registry.build("cifar10", {"root": "/data"}) == ("/data", "train")
    with pytest.raises(ConfigurationError, match=r"data set 'cifar10' needs the option.*'root'"):
        registry.build("cifar10", {"split": "test"})

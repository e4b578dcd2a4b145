from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ArenaHarness, install_stress_task, install_task, start_harness


@pytest.fixture
def start_arena(make_settings: Callable[..., Any]) -> Iterator[Callable[[], ArenaHarness]]:
    """Start an arena on the test's data folder; every arena started is closed after the test."""
    made: list[ArenaHarness] = []

    def start() -> ArenaHarness:
        harness = start_harness(make_settings())()
        made.append(harness)
        return harness

    yield start
    for harness in made:
        harness.client.__exit__(None, None, None)


@pytest.fixture
def harness_factory(
    start_arena: Callable[[], ArenaHarness], small_task_dir: Path, data_dir: Path
) -> Callable[..., ArenaHarness]:
    """Make an arena with the small task installed under the given rule overrides."""

    def factory(**spec_overrides: Any) -> ArenaHarness:
        install_task(small_task_dir, data_dir, **spec_overrides)
        return start_arena()

    return factory


@pytest.fixture
def harness(harness_factory: Callable[..., ArenaHarness]) -> ArenaHarness:
    return harness_factory()


@pytest.fixture
def stress_arena(
    make_settings: Callable[..., Any], small_task_dir: Path, data_dir: Path
) -> Iterator[Callable[..., ArenaHarness]]:
    """Start an arena serving the small task and its misbehaving twin ``mia-stress``, under
    settings overrides; ``spec`` overrides both tasks' rules, ``scoring_limits`` goes into the
    twin's manifest."""
    made: list[ArenaHarness] = []

    def start(
        *,
        spec: dict[str, Any] | None = None,
        scoring_limits: dict[str, Any] | None = None,
        teams: tuple[str, ...] = ("alpha", "beta"),
        **settings: Any,
    ) -> ArenaHarness:
        install_task(small_task_dir, data_dir, **(spec or {}))
        install_stress_task(small_task_dir, data_dir, scoring_limits=scoring_limits, **(spec or {}))
        harness = start_harness(
            make_settings(plugins=["slow_kind", "stress_kind"], **settings), teams
        )()
        made.append(harness)
        return harness

    yield start
    for harness in made:
        harness.client.__exit__(None, None, None)

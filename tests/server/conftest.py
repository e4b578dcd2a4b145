from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ArenaHarness, install_task, start_harness


@pytest.fixture
def harness_factory(
    make_settings: Callable[..., Any], small_task_dir: Path, data_dir: Path
) -> Iterator[Callable[..., ArenaHarness]]:
    """Make an arena with the small task installed under the given rule overrides."""
    made: list[ArenaHarness] = []

    def factory(**spec_overrides: Any) -> ArenaHarness:
        install_task(small_task_dir, data_dir, **spec_overrides)
        harness = start_harness(make_settings())()
        made.append(harness)
        return harness

    yield factory
    for harness in made:
        harness.client.__exit__(None, None, None)


@pytest.fixture
def harness(harness_factory: Callable[..., ArenaHarness]) -> ArenaHarness:
    return harness_factory()

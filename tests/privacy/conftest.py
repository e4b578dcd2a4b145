"""Shared fixtures of the privacy tests: a small population, reference models and a target."""

from __future__ import annotations

import pytest
from privacy_population import Population, make_population


@pytest.fixture(scope="session")
def population() -> Population:
    return make_population()

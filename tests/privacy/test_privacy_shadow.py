"""Tests of the shadow-model attack of Shokri et al."""

from __future__ import annotations

import re

import numpy as np
import pytest
from privacy_population import Population

from trustlab.core.errors import ConfigurationError
from trustlab.core.metrics import auc
from trustlab.privacy import ShadowModelAttack
from trustlab.privacy.shadow import MSG_NOT_THE_POPULATION


def test_shadow_attack_separates_members(population: Population) -> None:
    attack = ShadowModelAttack(
        reference=population.reference, population_x=population.x, population_y=population.y
    )
    scores = attack.infer(model=population.target, x=population.x, y=population.y)
    assert np.isfinite(scores).all()
    assert auc(y_true=population.member, scores=scores) > 0.6
    # One attack classifier per class, plus the one over all classes.
    assert sorted(attack._attack_classifiers()) == [-1, 0, 1, 2]


def test_per_class_classifiers_fall_back_to_the_global_one(population: Population) -> None:
    attack = ShadowModelAttack(
        reference=population.reference,
        population_x=population.x,
        population_y=population.y,
        min_rows=10_000,
    )
    scores = attack.infer(model=population.target, x=population.x, y=population.y)
    assert sorted(attack._attack_classifiers()) == [-1]
    assert np.isfinite(scores).all()


def test_shadow_attack_needs_the_reference_population(population: Population) -> None:
    attack = ShadowModelAttack(
        reference=population.reference, population_x=population.z_x, population_y=population.z_y
    )
    message = MSG_NOT_THE_POPULATION.format(n_given=100, n_saved=240)
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        attack.infer(model=population.target, x=population.x, y=population.y)

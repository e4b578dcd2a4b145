"""Each extraction attack beats random-query extraction at the same budget."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from extraction_helpers import DigitsSplit, make_mlp, outputs
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import MSG_PARAM
from trustlab.extraction import (
    ActiveThief,
    Distillation,
    ExtractionAttack,
    JacobianAugmentation,
    KnockoffNets,
    LocalOracle,
    embedding_l2,
    label_agreement,
)
from trustlab.extraction.defences import EmbeddingTransform
from trustlab.extraction.jacobian import step_size
from trustlab.extraction.knockoff import MSG_POOL_LABELS

BUDGET = 150
TRAINING = {"epochs": 15, "lr": 3e-3}


def steal(
    attack: ExtractionAttack, victim: nn.Module, digits: DigitsSplit, output: str = "labels"
) -> tuple[float, int]:
    oracle = LocalOracle(model=victim, output=output, budget=BUDGET)
    with torch.no_grad():
        reference = victim(digits.x_test)
    result = attack.extract(
        oracle=oracle,
        surrogate=make_mlp(hidden=32, seed=5),
        budget=BUDGET,
        eval_x=digits.x_test,
        eval_outputs=reference,
    )
    assert result.queries_used == oracle.queries_used <= BUDGET
    assert result.transfer_x.shape[0] == result.queries_used
    agreement = label_agreement(
        y_true=outputs(victim, digits.x_test), y_pred=outputs(result.model, digits.x_test)
    )
    assert result.history[-1].fidelity == pytest.approx(agreement)
    return agreement, result.queries_used


@pytest.fixture(scope="module")
def random_baseline(victim: nn.Module, digits: DigitsSplit) -> float:
    """Distillation on uniform noise in [0, 1]: the random-query baseline."""
    noise = torch.rand(BUDGET, 64, generator=torch.Generator().manual_seed(3))
    agreement, _ = steal(Distillation(query_x=noise, **TRAINING), victim, digits)
    return agreement


def attacks(digits: DigitsSplit) -> dict[str, ExtractionAttack]:
    pool = digits.x_pool
    return {
        "distillation": Distillation(query_x=pool, **TRAINING),
        "knockoff-random": KnockoffNets(pool=pool, **TRAINING),
        "knockoff-adaptive": KnockoffNets(
            sampling="adaptive", pool=pool, pool_labels=digits.y_pool, round_size=50, **TRAINING
        ),
        "jacobian": JacobianAugmentation(seed_x=pool[:20], substitute_epochs=4, **TRAINING),
        "activethief-uncertainty": ActiveThief(pool=pool, initial=50, step=50, **TRAINING),
        "activethief-k-center": ActiveThief(
            strategy="k-center", pool=pool, initial=50, step=50, **TRAINING
        ),
    }


@pytest.mark.parametrize(
    "name",
    [
        "distillation",
        "knockoff-random",
        "knockoff-adaptive",
        "jacobian",
        "activethief-uncertainty",
        "activethief-k-center",
    ],
)
def test_attack_beats_random_queries(
    name: str, victim: nn.Module, digits: DigitsSplit, random_baseline: float
) -> None:
    agreement, used = steal(attacks(digits)[name], victim, digits)
    assert used <= BUDGET
    assert agreement > random_baseline + 0.15, (agreement, random_baseline)


def test_soft_labels_work_and_history_grows(victim: nn.Module, digits: DigitsSplit) -> None:
    attack = ActiveThief(strategy="k-center", pool=digits.x_pool, initial=50, step=50, **TRAINING)
    oracle = LocalOracle(model=victim, output="probabilities", budget=BUDGET)
    result = attack.extract(
        oracle=oracle,
        surrogate=make_mlp(hidden=32, seed=5),
        budget=BUDGET,
        eval_x=digits.x_test,
        eval_outputs=oracle.clean_outputs(digits.x_test),
    )
    assert result.target == "probabilities"
    assert [point.queries for point in result.history] == [50, 100, 150]
    assert result.history[-1].fidelity is not None and result.history[-1].fidelity > 0.6


def test_jacobian_step_follows_the_periodic_sign_flip(
    victim: nn.Module, digits: DigitsSplit
) -> None:
    assert [step_size(lam=0.1, tau=3, rho=rho) for rho in range(7)] == [
        0.1,
        0.1,
        0.1,
        -0.1,
        -0.1,
        -0.1,
        0.1,
    ]
    seeds = digits.x_pool[:5]
    attack = JacobianAugmentation(seed_x=seeds, substitute_epochs=4, lam=0.1, epochs=1)
    oracle = LocalOracle(model=victim, output="labels")
    result = attack.extract(oracle=oracle, surrogate=make_mlp(seed=5), budget=1000)
    # The set doubles after each of the first three substitute epochs.
    assert result.queries_used == 5 * 2**3
    x = result.transfer_x
    # Each new point is its parent moved by exactly 0.1 per pixel, unless clipped to [0, 1].
    for parents, children in [(x[:5], x[5:10]), (x[:10], x[10:20]), (x[:20], x[20:40])]:
        moved = (children - parents).abs()
        clipped = (children == 0) | (children == 1)
        assert bool((((moved - 0.1).abs() < 1e-6) | clipped).all())
        assert bool(((children >= 0) & (children <= 1)).all())


def test_a_copy_fits_only_its_own_client_frame(victim: nn.Module, digits: DigitsSplit) -> None:
    defence = EmbeddingTransform(secret="course")
    oracle = LocalOracle(model=victim, output="embeddings", defence=defence, client_id="team-a")
    attack = Distillation(query_x=digits.x_pool, epochs=40, lr=3e-3)
    result = attack.extract(oracle=oracle, surrogate=make_mlp(seed=5), budget=600)
    assert result.target == "embeddings"
    with torch.no_grad():
        clean = victim(digits.x_test)
    inputs = torch.zeros(len(clean), 1)
    own = defence.apply(outputs=clean, inputs=inputs, client_id="team-a")
    other = defence.apply(outputs=clean, inputs=inputs, client_id="team-b")
    copy = outputs(result.model, digits.x_test)
    assert embedding_l2(reference=own, candidate=copy) * 3 < embedding_l2(
        reference=other, candidate=copy
    )


def test_encoder_extraction_beats_noise_queries(victim: nn.Module, digits: DigitsSplit) -> None:
    def copy_error(attack: ExtractionAttack) -> float:
        oracle = LocalOracle(model=victim, output="embeddings", budget=BUDGET)
        result = attack.extract(oracle=oracle, surrogate=make_mlp(seed=5), budget=BUDGET)
        return embedding_l2(
            reference=outputs(victim, digits.x_test),
            candidate=outputs(result.model, digits.x_test),
        )

    training = {"epochs": 60, "lr": 3e-3}
    noise = torch.rand(BUDGET, 64, generator=torch.Generator().manual_seed(3))
    baseline = copy_error(Distillation(query_x=noise, **training))
    k_center = copy_error(ActiveThief(strategy="k-center", pool=digits.x_pool, **training))
    knockoff = copy_error(KnockoffNets(pool=digits.x_pool, **training))
    assert k_center < 0.7 * baseline
    assert knockoff < 0.7 * baseline


def test_classifier_only_methods_refuse_encoders(victim: nn.Module, digits: DigitsSplit) -> None:
    for attack, match in [
        (JacobianAugmentation(seed_x=digits.x_pool[:5]), "needs a classifier oracle"),
        (ActiveThief(pool=digits.x_pool), "Use strategy='k-center' for encoders"),
    ]:
        oracle = LocalOracle(model=victim, output="embeddings")
        with pytest.raises(ConfigurationError, match=match):
            attack.extract(oracle=oracle, surrogate=make_mlp(), budget=20)


def test_attacks_stop_at_the_oracle_budget(victim: nn.Module, digits: DigitsSplit) -> None:
    oracle = LocalOracle(model=victim, output="labels", budget=40)
    result = KnockoffNets(pool=digits.x_pool, epochs=1).extract(
        oracle=oracle, surrogate=make_mlp(), budget=100
    )
    assert result.queries_used == 40 and oracle.queries_remaining == 0
    with pytest.raises(DataError, match="spent no queries"):
        KnockoffNets(pool=digits.x_pool, epochs=1).extract(
            oracle=oracle, surrogate=make_mlp(), budget=100
        )


def test_extraction_is_reproducible(victim: nn.Module, digits: DigitsSplit) -> None:
    def weights() -> list[torch.Tensor]:
        oracle = LocalOracle(model=victim, output="probabilities")
        attack = KnockoffNets(
            sampling="adaptive",
            pool=digits.x_pool,
            pool_labels=digits.y_pool,
            round_size=20,
            epochs=2,
            seed=7,
        )
        result = attack.extract(oracle=oracle, surrogate=make_mlp(seed=2), budget=60)
        return [p.detach().clone() for p in result.model.parameters()]

    assert all(torch.equal(a, b) for a, b in zip(weights(), weights(), strict=True))


POOL = torch.zeros(3, 64)


def param_message(name: str, owner: str, rule: str, value: object) -> str:
    return MSG_PARAM.format(name=name, owner=owner, rule=rule, value=value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: KnockoffNets(sampling="smart", pool=POOL),
            param_message("sampling", "KnockoffNets", "one of 'random', 'adaptive'", "smart"),
        ),
        (lambda: KnockoffNets(sampling="adaptive", pool=POOL), MSG_POOL_LABELS),
        (
            lambda: ActiveThief(strategy="bald", pool=POOL),
            param_message("strategy", "ActiveThief", "one of 'uncertainty', 'k-center'", "bald"),
        ),
        (
            lambda: ActiveThief(pool=POOL, initial=0),
            param_message("initial", "ActiveThief", "None or an int >= 1", 0),
        ),
        (
            lambda: JacobianAugmentation(seed_x=POOL, lam=-1.0),
            param_message("lam", "JacobianAugmentation", "a finite float > 0", -1.0),
        ),
        (
            lambda: JacobianAugmentation(seed_x=POOL, clip=(1.0, 0.0)),
            param_message(
                "clip",
                "JacobianAugmentation",
                "None or a pair (low, high) of finite numbers with low < high",
                (1.0, 0.0),
            ),
        ),
        (
            lambda: Distillation(query_x=POOL, epochs=0),
            param_message("epochs", "Distillation", "an int >= 1", 0),
        ),
        (
            lambda: Distillation(query_x=POOL, seed=-1),
            param_message("seed", "Distillation", "an int in [0, 4294967295]", -1),
        ),
        (
            lambda: Distillation(query_x=POOL, embedding_loss="l1"),
            param_message("embedding_loss", "Distillation", "one of 'mse', 'cosine'", "l1"),
        ),
    ],
)
def test_bad_parameters_fail_at_construction(
    make: Callable[[], ExtractionAttack], message: str
) -> None:
    with pytest.raises(ConfigurationError) as error:
        make()
    assert str(error.value) == message


def test_bad_extract_arguments_spend_no_queries(victim: nn.Module) -> None:
    oracle = LocalOracle(model=victim, budget=10)
    attack = Distillation(query_x=POOL)
    for arguments, message in [
        (
            {"oracle": oracle, "surrogate": make_mlp(), "budget": 0},
            param_message("budget", "Distillation.extract", "an int >= 1", 0),
        ),
        (
            {"oracle": victim, "surrogate": make_mlp(), "budget": 5},
            "'oracle' parameter of Distillation.extract must be an Oracle",
        ),
        (
            {"oracle": oracle, "surrogate": "mlp", "budget": 5},
            "'surrogate' parameter of Distillation.extract must be a torch.nn.Module",
        ),
    ]:
        with pytest.raises(ConfigurationError) as error:
            attack.extract(**arguments)  # type: ignore[arg-type]
        assert message in str(error.value)
    assert oracle.queries_used == 0

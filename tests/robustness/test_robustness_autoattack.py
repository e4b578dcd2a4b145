"""AutoAttack: the per-example cascade, its configurations, resuming, and its checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from trustlab.core.errors import ConfigurationError, UnknownNameError
from trustlab.core.progress import ProgressEvent
from trustlab.robustness import (
    APGDCE,
    APGDT,
    PGD,
    AutoAttack,
    AutoAttackResult,
    CarliniWagnerL2,
    TargetedPGD,
)
from trustlab.robustness.autoattack import (
    MSG_ATTACKS_NEED_CUSTOM,
    MSG_CUSTOM_NEEDS_ATTACKS,
    NOT_BROKEN,
)
from trustlab.robustness.sanity import SanityReport

EPS = 0.1  # the digits CNN keeps about 60 % robust accuracy here, so every stage has work


def cascade(seed: int = 0) -> AutoAttack:
    attacks = [
        APGDCE(eps=EPS, steps=5, seed=seed),
        APGDT(eps=EPS, steps=5, n_targets=2, seed=seed),
        PGD(eps=EPS, steps=5, early_stop=True, seed=seed),
    ]
    return AutoAttack(eps=EPS, version="custom", attacks=attacks, seed=seed, sanity=None)


@pytest.fixture(scope="module")
def inputs(attack_inputs: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    return attack_inputs[0][:48], attack_inputs[1][:48]


@pytest.fixture(scope="module")
def reference(digits_cnn: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor]) -> AutoAttackResult:
    x, y = inputs
    return cascade().generate(model=digits_cnn, x=x, y=y, batch_size=64)


def same(a: AutoAttackResult, b: AutoAttackResult) -> None:
    assert torch.equal(a.x_adv, b.x_adv)
    assert torch.equal(a.broken_by, b.broken_by)
    assert torch.equal(a.robust, b.robust)
    assert [(s.name, s.attacked, s.broken, s.forwards, s.backwards) for s in a.stages] == [
        (s.name, s.attacked, s.broken, s.forwards, s.backwards) for s in b.stages
    ]


def test_robust_only_if_every_attack_fails(
    digits_cnn: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor], reference: AutoAttackResult
) -> None:
    x, y = inputs
    # Each attack alone, on every example: the cascade must agree example by example.
    alone = [
        attack.generate(model=digits_cnn, x=x, y=y).adv_correct for _, attack in cascade().cascade
    ]
    expected = reference.clean_correct.clone()
    first_break = torch.full_like(reference.broken_by, NOT_BROKEN)
    for index, correct in enumerate(alone):
        newly = expected & ~correct
        first_break[newly] = index
        expected &= correct
    assert torch.equal(reference.robust, expected)
    assert torch.equal(reference.broken_by, first_break)
    # Every stage had work and the later ones ran only on what the earlier ones left.
    attacked = [stage.attacked for stage in reference.stages]
    assert attacked[0] == int(reference.clean_correct.sum())
    assert attacked[1] == attacked[0] - reference.stages[0].broken
    assert reference.stages[-1].robust_accuracy == pytest.approx(reference.robust_accuracy)
    assert 0 < reference.robust_accuracy < reference.clean_accuracy
    assert reference.forwards == sum(stage.forwards for stage in reference.stages)


def test_accuracy_is_recomputed_from_the_returned_examples(
    digits_cnn: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor], reference: AutoAttackResult
) -> None:
    x, y = inputs
    with torch.no_grad():
        correct = digits_cnn(reference.x_adv).argmax(1) == y
    assert torch.equal(reference.adv_correct, correct)
    assert bool((reference.perturbation <= EPS + 1e-6).all())
    assert torch.equal(
        reference.x_adv[reference.broken_by == NOT_BROKEN], x[reference.broken_by == NOT_BROKEN]
    )
    assert reference.broken_by_name(int(torch.argmax((reference.broken_by == 0).int()))) == (
        "apgd-ce"
    )


def test_batch_size_does_not_change_the_result(
    digits_cnn: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor], reference: AutoAttackResult
) -> None:
    x, y = inputs
    same(cascade().generate(model=digits_cnn, x=x, y=y, batch_size=5), reference)


class Interrupt(Exception):
    pass


def test_resume_after_an_interruption_gives_the_same_result(
    digits_cnn: nn.Module,
    inputs: tuple[torch.Tensor, torch.Tensor],
    reference: AutoAttackResult,
    tmp_path: Path,
) -> None:
    x, y = inputs
    state = tmp_path / "state.npz"
    calls: list[tuple[str, int, int]] = []

    def run_until_interrupted(batch_size: int, progress: Any) -> None:
        with pytest.raises(Interrupt):
            cascade().generate(
                model=digits_cnn,
                x=x,
                y=y,
                batch_size=batch_size,
                state_path=state,
                progress=progress,
            )

    def stop_after_first_attack(event: ProgressEvent) -> None:
        calls.append((event.stage, event.done, event.total or 0))
        if event.stage == "apgd-ce" and event.done == event.total:
            raise Interrupt

    run_until_interrupted(16, stop_after_first_attack)
    assert state.exists()
    resumed: list[str] = []
    result = cascade().generate(
        model=digits_cnn,
        x=x,
        y=y,
        batch_size=16,
        state_path=state,
        progress=lambda event: resumed.append(event.stage),
    )
    same(result, reference)
    assert "apgd-ce" not in resumed  # the first attack was not run again

    # Interrupted in the middle of a stage, between two batches.
    state.unlink()

    def stop_in_second_attack(event: ProgressEvent) -> None:
        if event.stage == "apgd-t" and event.done < (event.total or 0):
            raise Interrupt

    run_until_interrupted(4, stop_in_second_attack)
    same(cascade().generate(model=digits_cnn, x=x, y=y, batch_size=4, state_path=state), reference)
    # A finished state answers at once, without attacking.
    again = cascade().generate(
        model=digits_cnn,
        x=x,
        y=y,
        state_path=state,
        progress=lambda *_: pytest.fail("a finished evaluation ran an attack"),
    )
    same(again, reference)


def test_a_state_of_another_evaluation_is_refused(
    digits_cnn: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    x, y = inputs
    state = tmp_path / "state.npz"
    cascade(seed=0).generate(model=digits_cnn, x=x[:4], y=y[:4], state_path=state)
    with pytest.raises(ConfigurationError, match="belongs to a different evaluation"):
        cascade(seed=1).generate(model=digits_cnn, x=x[:4], y=y[:4], state_path=state)
    with pytest.raises(ConfigurationError, match="belongs to a different evaluation"):
        cascade(seed=0).generate(model=digits_cnn, x=x[:5], y=y[:5], state_path=state)
    state.write_bytes(b"not a state")
    with pytest.raises(ConfigurationError, match="cannot be read"):
        cascade(seed=0).generate(model=digits_cnn, x=x[:4], y=y[:4], state_path=state)


def test_standard_version_is_the_references_configuration(
    digits_cnn: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    evaluation = AutoAttack(eps=0.3, sanity=None)
    assert evaluation.attack_names == ("apgd-ce", "apgd-t", "fab-t", "square")
    attacks = dict(evaluation.cascade)

    def setting(attack: Any, *names: str) -> Any:
        return next(getattr(attack, name) for name in names if hasattr(attack, name))

    assert (attacks["apgd-ce"].steps, attacks["apgd-ce"].restarts) == (100, 1)
    assert (attacks["apgd-t"].steps, attacks["apgd-t"].n_targets) == (100, 9)
    assert setting(attacks["fab-t"], "steps", "n_iter") == 100
    assert setting(attacks["fab-t"], "n_targets", "n_target_classes") == 9
    assert setting(attacks["square"], "n_queries") == 5000
    assert setting(attacks["square"], "p_init") == pytest.approx(0.8)
    assert all(attack.eps == 0.3 and attack.seed == 0 for attack in attacks.values())
    # At a large eps APGD-CE breaks everything, and the other stages have nothing left to do.
    x, y = inputs
    result = evaluation.generate(model=digits_cnn, x=x[:12], y=y[:12])
    assert result.robust_accuracy == 0.0
    assert [stage.attacked for stage in result.stages[1:]] == [0, 0, 0]
    rand = AutoAttack(eps=0.3, version="rand", norm="L2")
    assert rand.attack_names == ("apgd-ce", "apgd-dlr")
    assert all(attack.eot_iter == 20 and attack.norm.value == "L2" for _, attack in rand.cascade)


def test_minimum_norm_attacks_count_only_inside_the_ball(
    digits_cnn: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = inputs[0][:12], inputs[1][:12]
    cw = CarliniWagnerL2(steps=30, binary_search_steps=3, initial_const=1.0, lr=0.05)
    result = AutoAttack(norm="L2", eps=0.5, version="custom", attacks=[cw], sanity=None).generate(
        model=digits_cnn, x=x, y=y
    )
    found = cw.generate(model=digits_cnn, x=x, y=y)
    inside = found.clean_correct & ~found.adv_correct & (found.perturbation <= 0.5)
    assert torch.equal(result.broken_by == 0, inside)
    assert bool((result.perturbation <= 0.5 + 1e-6).all())


def test_sanity_checks_run_with_every_evaluation(
    digits_cnn: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = inputs[0][:16], inputs[1][:16]
    evaluation = AutoAttack(eps=EPS, version="custom", attacks=[APGDCE(eps=EPS, steps=3)])
    result = evaluation.generate(model=digits_cnn, x=x, y=y)
    assert isinstance(result.sanity, SanityReport)
    summary = json.loads(json.dumps(result.summary()))
    assert summary["sanity"] == json.loads(json.dumps(result.sanity.summary()))
    assert summary["stages"][0]["name"] == "apgd-ce"


def test_a_custom_sanity_hook_gets_the_threat_model(
    digits_cnn: nn.Module, inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = inputs[0][:4], inputs[1][:4]
    seen: list[dict[str, Any]] = []

    def sanity(**arguments: Any) -> dict[str, bool]:
        seen.append(arguments)
        return {"deterministic": True}

    evaluation = AutoAttack(
        eps=EPS, version="custom", attacks=[APGDCE(eps=EPS, steps=3)], sanity=sanity, seed=4
    )
    result = evaluation.generate(model=digits_cnn, x=x, y=y, batch_size=8)
    assert len(seen) == 1
    assert seen[0]["model"] is digits_cnn and torch.equal(seen[0]["x"], x)
    assert (seen[0]["norm"].value, seen[0]["eps"], seen[0]["seed"]) == ("Linf", EPS, 4)
    assert (seen[0]["bounds"], seen[0]["batch_size"]) == ((0.0, 1.0), 8)
    assert result.summary()["sanity"] == {"deterministic": True}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"eps": 0.1, "version": "plus"}, r"'version' parameter of AutoAttack must be one of"),
        ({"eps": 0.1, "version": "custom"}, MSG_CUSTOM_NEEDS_ATTACKS),
        ({"eps": 0.1, "attacks": ["apgd-ce"]}, MSG_ATTACKS_NEED_CUSTOM.format(version="standard")),
        ({"eps": 0.1, "norm": "L1"}, r"'norm' parameter of AutoAttack must be one of"),
        ({"eps": -1}, r"'eps' parameter of AutoAttack must be a finite float > 0"),
        ({"eps": 0.1, "version": "custom", "attacks": [3]}, r"Entry 0 is 3"),
        ({"eps": 0.1, "version": "custom", "attacks": ["apgd-ce", "apgd-ce"]}, r"twice"),
        ({"eps": 0.1, "version": "custom", "attacks": [APGDCE(eps=0.2)]}, r"must match"),
        ({"eps": 0.1, "version": "custom", "attacks": [TargetedPGD(eps=0.1)]}, r"needs target"),
        ({"eps": 0.1, "version": "custom", "attacks": "apgd-ce"}, r"'attacks' parameter of"),
        ({"eps": 0.1, "sanity": "yes"}, r"'sanity' parameter of AutoAttack must be None or"),
    ],
)
def test_bad_configurations_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        AutoAttack(**options)


def test_unknown_attack_names_list_the_known_ones() -> None:
    with pytest.raises(UnknownNameError, match="Known attacks: apgd-ce, apgd-dlr, apgd-t"):
        AutoAttack(eps=0.1, version="custom", attacks=["no-such-attack"])


def test_run_and_cascade_underscore_still_work_with_a_future_warning(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = attack_inputs
    evaluation = AutoAttack(
        eps=0.1, version="custom", attacks=[APGDCE(eps=0.1, steps=2)], sanity=None
    )
    with pytest.warns(FutureWarning, match="AutoAttack.cascade_ is deprecated in 0.2"):
        assert evaluation.cascade_ == evaluation.cascade
    with pytest.warns(FutureWarning, match="AutoAttack.run is deprecated in 0.2"):
        old = evaluation.run(model=digits_cnn, x=x[:8], y=y[:8])
    new = evaluation.generate(model=digits_cnn, x=x[:8], y=y[:8])
    assert torch.equal(old.x_adv, new.x_adv) and torch.equal(old.robust, new.robust)
    assert "cascade_" not in vars(evaluation)

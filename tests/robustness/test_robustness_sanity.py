"""Sanity checks: an honest digits CNN passes them all, and models built to mask gradients,
return probabilities, draw random noise or stay in training mode each trip their flag."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
import torch
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import MSG_PARAM
from trustlab.robustness import PGD, SanityReport, run_sanity_checks
from trustlab.robustness.sanity import CHECKS, FLAG_NAMES, SanityCheck
from trustlab.robustness.sanity.runner import MSG_RESULTS_LENGTH

LINF_EPS = 0.1
# Small and cheap settings; the defaults are a little larger.
CHEAP: dict[str, Any] = {"n_examples": 32, "square_queries": 200, "n_noise": 8, "pgd_steps": 10}


@pytest.fixture(scope="module")
def sanity_data(digits_split: Any) -> tuple[torch.Tensor, torch.Tensor]:
    return digits_split.x_test[:160].clone(), digits_split.y_test[:160].clone()


def check(
    model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], **options: Any
) -> SanityReport:
    x, y = data
    return run_sanity_checks(
        model=model, x=x, y=y, norm="Linf", eps=LINF_EPS, **{**CHEAP, **options}
    )


class Softmax(nn.Module):
    """Returns probabilities instead of logits."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(x), dim=1)


class Quantised(nn.Module):
    """Rounds the input to 5 grey levels: zero gradients almost everywhere."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(torch.round(x * 4) / 4)


class Noisy(nn.Module):
    """Adds Gaussian noise to the input at inference, even in eval mode."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x + 0.05 * torch.randn_like(x))


class WithDropout(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.dropout = nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(self.dropout(x))


@pytest.fixture(scope="module")
def honest_report(
    digits_cnn: nn.Module, sanity_data: tuple[torch.Tensor, torch.Tensor]
) -> SanityReport:
    return check(digits_cnn, sanity_data)


def test_every_flag_has_one_check_object() -> None:
    assert all(isinstance(check, SanityCheck) for check in CHECKS)
    assert [check.name for check in CHECKS] == list(FLAG_NAMES)
    assert len(set(FLAG_NAMES)) == len(FLAG_NAMES)


def test_an_honest_model_passes_every_check(honest_report: SanityReport) -> None:
    assert [flag.name for flag in honest_report.flags] == list(FLAG_NAMES)
    assert honest_report.passed, [f.explanation for f in honest_report.flags if not f.passed]
    grid = honest_report.flag("eps_monotone").details["robust_accuracy"]
    assert grid[0] > grid[-1]  # PGD works: accuracy falls over the eps grid


def test_report_records_its_cost_and_is_json_ready(honest_report: SanityReport) -> None:
    assert honest_report.n_examples == 32
    assert len(set(honest_report.indices)) == 32
    assert honest_report.forwards > 0 and honest_report.backwards > 0
    summary = json.loads(json.dumps(honest_report.summary()))
    assert summary["passed"] is True
    assert [flag["name"] for flag in summary["flags"]] == list(FLAG_NAMES)


def test_probabilities_trip_the_logit_check(
    digits_cnn: nn.Module, sanity_data: tuple[torch.Tensor, torch.Tensor]
) -> None:
    report = check(Softmax(digits_cnn).eval(), sanity_data)
    flag = report.flag("logits")
    assert not flag.passed
    assert flag.value == 1.0
    assert "pass the logits" in flag.explanation


def test_quantised_inputs_trip_the_gradient_and_black_box_checks(
    digits_cnn: nn.Module, sanity_data: tuple[torch.Tensor, torch.Tensor]
) -> None:
    report = check(Quantised(digits_cnn).eval(), sanity_data)
    gradients = report.flag("gradients")
    assert not gradients.passed
    assert gradients.value > 0.9
    assert "masked or shattered" in gradients.explanation
    black_box = report.flag("black_box")
    assert not black_box.passed
    assert black_box.details["white_box_success"] < black_box.details["square_success"]
    assert "gradient masking" in black_box.explanation


def test_randomness_at_inference_trips_the_determinism_check(
    digits_cnn: nn.Module, sanity_data: tuple[torch.Tensor, torch.Tensor]
) -> None:
    report = check(Noisy(digits_cnn).eval(), sanity_data, eps_factors=(1.0,))
    flag = report.flag("deterministic")
    assert not flag.passed
    assert flag.value > 0
    assert "EOT" in flag.explanation


def test_training_mode_trips_the_eval_check_and_modes_are_restored(
    digits_cnn: nn.Module, sanity_data: tuple[torch.Tensor, torch.Tensor]
) -> None:
    model = WithDropout(copy.deepcopy(digits_cnn)).train()
    report = check(model, sanity_data, eps_factors=(1.0,))
    flag = report.flag("eval_mode")
    assert not flag.passed
    assert "dropout" in flag.details["modules_in_training_mode"]
    assert "model.eval()" in flag.explanation
    assert all(module.training for module in model.modules())


def test_a_weak_white_box_evaluation_is_beaten_by_the_black_box_check(
    digits_cnn: nn.Module, sanity_data: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = sanity_data
    # A "white-box evaluation" that ran at a tenth of the radius misses what noise finds.
    weak = PGD(eps=LINF_EPS / 10, steps=2).generate(model=digits_cnn, x=x, y=y)
    report = check(digits_cnn, sanity_data, attack_results={"weak-pgd": weak}, eps_factors=(1.0,))
    flag = report.flag("black_box")
    assert not flag.passed
    assert flag.details["examples_beaten"]
    assert set(flag.details["examples_beaten"]) <= set(report.indices)


def test_attack_results_must_cover_the_same_examples(
    digits_cnn: nn.Module, sanity_data: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = sanity_data
    partial = PGD(eps=LINF_EPS, steps=1).generate(model=digits_cnn, x=x[:10], y=y[:10])
    with pytest.raises(DataError) as info:
        check(digits_cnn, sanity_data, attack_results=[partial])
    assert str(info.value) == MSG_RESULTS_LENGTH.format(name="0", got=10, expected=160)


def test_bad_parameters_and_inputs_are_refused(digits_cnn: nn.Module) -> None:
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ConfigurationError) as info:
        run_sanity_checks(model=digits_cnn, x=x, y=y, norm="Linf", eps=0.1, eps_factors=())
    rule = "a non-empty sequence of floats > 0"
    expected = MSG_PARAM.format(name="eps_factors", owner="run_sanity_checks", rule=rule, value=())
    assert str(info.value) == expected
    with pytest.raises(ConfigurationError, match="'eps_factors' parameter"):
        run_sanity_checks(model=digits_cnn, x=x, y=y, norm="Linf", eps=0.1, eps_factors=(1, -2))
    with pytest.raises(ConfigurationError, match="'eps' parameter of run_sanity_checks"):
        run_sanity_checks(model=digits_cnn, x=x, y=y, norm="Linf", eps=-1.0)
    with pytest.raises(DataError, match="outside the valid input range"):
        run_sanity_checks(model=digits_cnn, x=x * 3, y=y, norm="Linf", eps=0.1)


def test_one_example_missed_by_the_short_pgd_is_not_a_flag(
    digits_cnn: nn.Module, digits_split: Any
) -> None:
    # On this subsample Square breaks one example that the 10-step PGD misses, while PGD
    # breaks more examples overall: no sign of masking.
    x, y = digits_split.x_test[:300], digits_split.y_test[:300]
    report = run_sanity_checks(model=digits_cnn, x=x, y=y, norm="Linf", eps=LINF_EPS)
    flag = report.flag("black_box")
    assert flag.passed
    assert flag.details["black_box_success"] <= flag.details["white_box_success"]


def test_attack_results_must_be_results(digits_cnn: nn.Module) -> None:
    x, y = torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 3])
    with pytest.raises(ConfigurationError, match="'attack_results' parameter"):
        run_sanity_checks(model=digits_cnn, x=x, y=y, norm="Linf", eps=0.1, attack_results=["pgd"])

"""The attack base: threat models, projections, keyed randomness, counting, the re-check."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
import torch
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import MSG_PARAM
from trustlab.robustness._counting import CountingModel
from trustlab.robustness._inputs import MSG_OUT_OF_BOUNDS
from trustlab.robustness._random import ExampleRandom
from trustlab.robustness.base import MSG_NEGATIVE_INDEX, Attack, AttackContractError
from trustlab.robustness.fgsm import FGSM
from trustlab.robustness.losses import dlr_loss, margin_loss, targeted_dlr_loss
from trustlab.robustness.norms import Norm, linf_box, per_example_norm, project, project_to_threat
from trustlab.robustness.pgd import PGD


def linear_model(n_in: int = 4, n_out: int = 3, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(n_in, n_out))


class Shift(Attack):
    """A test attack that adds a fixed offset (so it can be made to break the contract)."""

    name: ClassVar[str] = "test-shift"

    def __init__(self, *, offset: float, eps: float | None = 0.1) -> None:
        self.norm = Norm.LINF
        self.eps = eps
        self.bounds = (0.0, 1.0)
        self.seed = 0
        self.offset = offset
        self.seen_indices: list[torch.Tensor] = []

    def _perturb(
        self,
        *,
        model: CountingModel,
        x: torch.Tensor,
        y: torch.Tensor,
        targets: torch.Tensor | None,
        indices: torch.Tensor,
        clean_correct: torch.Tensor,
    ) -> torch.Tensor:
        self.seen_indices.append(indices.clone())
        model(x)
        return x + self.offset


# --------------------------------------------------------------------------------------------
# Parameters


def test_the_norm_is_parsed_by_name_and_checked_against_the_attack_norms() -> None:
    assert PGD(eps=0.1, norm="linf").norm is Norm.LINF
    assert FGSM(eps=0.1, norm=Norm.L2).norm is Norm.L2
    with pytest.raises(ConfigurationError) as info:
        FGSM(eps=0.1, norm="L1")
    expected = MSG_PARAM.format(name="norm", owner="FGSM", rule="one of 'Linf', 'L2'", value="L1")
    assert str(info.value) == expected
    with pytest.raises(ConfigurationError, match="Got 'L3' instead"):
        PGD(eps=0.1, norm="L3")


def test_norm_parse_still_works_with_a_future_warning() -> None:
    with pytest.warns(FutureWarning, match="Norm.parse is deprecated in 0.2"):
        assert Norm.parse("l2", owner="PGD", allowed=(Norm.L2,)) is Norm.L2


@pytest.mark.parametrize("value", [0, -3, float("nan"), float("inf"), True, "1"])
def test_eps_must_be_a_finite_positive_float(value: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        PGD(eps=value)  # type: ignore[arg-type]
    expected = MSG_PARAM.format(name="eps", owner="PGD", rule="a finite float > 0", value=value)
    assert str(info.value) == expected


def test_shared_parameters_are_checked_and_normalised_once() -> None:
    attack = PGD(eps=1, steps=np.int64(3), bounds=[0, 255])
    assert attack.eps == 1.0 and isinstance(attack.eps, float)
    assert attack.steps == 3 and type(attack.steps) is int
    assert attack.bounds == (0.0, 255.0)
    with pytest.raises(ConfigurationError, match=r"must be an int >= 1\. Got 0"):
        PGD(eps=0.1, steps=0)
    with pytest.raises(ConfigurationError, match="int >= 1"):
        PGD(eps=0.1, steps=2.0)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="low < high"):
        PGD(eps=0.1, bounds=(1.0, 0.0))
    with pytest.raises(ConfigurationError, match="pair"):
        PGD(eps=0.1, bounds=3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Norms and projections


def test_per_example_norm_matches_numpy() -> None:
    delta = torch.randn(5, 2, 3, generator=torch.Generator().manual_seed(1))
    rows = delta.numpy().reshape(5, -1)
    np.testing.assert_allclose(per_example_norm(delta, Norm.LINF), np.abs(rows).max(1), rtol=1e-6)
    np.testing.assert_allclose(
        per_example_norm(delta, Norm.L2), np.linalg.norm(rows, axis=1), rtol=1e-6
    )
    np.testing.assert_allclose(per_example_norm(delta, Norm.L1), np.abs(rows).sum(1), rtol=1e-6)


def test_projection_by_hand() -> None:
    delta = torch.tensor([[3.0, -4.0], [0.1, 0.2]])
    # Linf clamps each coordinate.
    assert torch.equal(
        project(delta, norm=Norm.LINF, eps=1.0), torch.tensor([[1.0, -1.0], [0.1, 0.2]])
    )
    # L2 rescales (3, -4) of norm 5 to norm 1, and leaves the short one alone.
    l2 = project(delta, norm=Norm.L2, eps=1.0)
    assert torch.allclose(l2, torch.tensor([[0.6, -0.8], [0.1, 0.2]]))
    # L1: soft-threshold (3, -4) to L1 norm 1 -> theta = 3 -> (0, -1).
    l1 = project(delta, norm=Norm.L1, eps=1.0)
    assert torch.allclose(l1, torch.tensor([[0.0, -1.0], [0.1, 0.2]]), atol=1e-6)


def test_l1_projection_is_the_closest_point_of_the_ball() -> None:
    gen = torch.Generator().manual_seed(2)
    delta = torch.randn(20, 6, generator=gen) * 2
    projected = project(delta, norm=Norm.L1, eps=1.5)
    assert bool((projected.abs().sum(1) <= 1.5 + 1e-5).all())
    # No random point of the ball is closer to delta than the projection.
    for _ in range(50):
        other = project(torch.randn(20, 6, generator=gen), norm=Norm.L1, eps=1.5)
        assert bool(((delta - projected).norm(dim=1) <= (delta - other).norm(dim=1) + 1e-5).all())


def test_project_to_threat_and_linf_box_stay_in_ball_and_range() -> None:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(10, 8, generator=gen)
    far = x + torch.randn(10, 8, generator=gen)
    for norm in (Norm.LINF, Norm.L2, Norm.L1):
        inside = project_to_threat(far, x, norm=norm, eps=0.3, bounds=(0.0, 1.0))
        assert bool((per_example_norm(inside - x, norm) <= 0.3 + 1e-6).all())
        assert bool(((inside >= 0) & (inside <= 1)).all())
    low, high = linf_box(x, eps=0.3, bounds=(0.0, 1.0))
    assert torch.equal(
        torch.clamp(far, min=low, max=high),
        project_to_threat(far, x, norm=Norm.LINF, eps=0.3, bounds=(0.0, 1.0)),
    )


# --------------------------------------------------------------------------------------------
# Losses


def test_margin_and_dlr_losses_by_hand() -> None:
    logits = torch.tensor([[4.0, 1.0, 0.0, -1.0], [1.0, 3.0, 2.0, 0.0]])
    y = torch.tensor([0, 0])
    assert torch.allclose(margin_loss(logits, y), torch.tensor([1.0 - 4.0, 3.0 - 1.0]))
    # DLR: -(z_y - max other) / (z_(1) - z_(3)).
    expected = torch.tensor([-(4.0 - 1.0) / (4.0 - 0.0), -(1.0 - 3.0) / (3.0 - 1.0)])
    assert torch.allclose(dlr_loss(logits, y), expected)
    # Shift and scale invariance.
    assert torch.allclose(dlr_loss(3 * logits + 7, y), expected, atol=1e-6)
    # Targeted DLR: -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2).
    t = torch.tensor([3, 2])
    expected_t = torch.tensor(
        [-(4.0 - -1.0) / (4.0 - (0.0 + -1.0) / 2), -(1.0 - 2.0) / (3.0 - (1.0 + 0.0) / 2)]
    )
    assert torch.allclose(targeted_dlr_loss(logits, y, t), expected_t)


# --------------------------------------------------------------------------------------------
# Keyed randomness


def test_example_random_depends_on_key_not_on_batch() -> None:
    rng = ExampleRandom(seed=5)
    together = rng.uniform(indices=torch.arange(10), step=3, shape=(4,))
    alone = torch.cat(
        [rng.uniform(indices=torch.tensor([i]), step=3, shape=(4,)) for i in range(10)]
    )
    assert torch.equal(together, alone)
    assert not torch.equal(together, rng.uniform(indices=torch.arange(10), step=4, shape=(4,)))
    assert not torch.equal(
        together, ExampleRandom(seed=6).uniform(indices=torch.arange(10), step=3, shape=(4,))
    )
    assert float(together.min()) >= 0.0 and float(together.max()) < 1.0


def test_example_random_distributions() -> None:
    rng = ExampleRandom(seed=0)
    u = rng.uniform(indices=torch.arange(2000), step=0, shape=(8,))
    assert abs(float(u.mean()) - 0.5) < 0.01
    z = rng.normal(indices=torch.arange(2000), step=0, shape=(8,))
    assert abs(float(z.mean())) < 0.03 and abs(float(z.std()) - 1.0) < 0.03
    k = rng.integers(indices=torch.arange(2000), step=0, high=5, shape=(3,))
    assert set(k.unique().tolist()) == {0, 1, 2, 3, 4}


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L2, Norm.L1])
def test_ball_samples_are_inside_the_ball(norm: Norm) -> None:
    like = torch.zeros(500, 3, 4)
    delta = ExampleRandom(seed=1).ball(
        indices=torch.arange(500), step=0, like=like, norm=norm, eps=0.5
    )
    sizes = per_example_norm(delta, norm)
    assert bool((sizes <= 0.5 + 1e-5).all())
    # Uniform in the ball of a 12-dimensional space: most of the mass is near the surface.
    assert float(sizes.median()) > 0.4


# --------------------------------------------------------------------------------------------
# Counting and modes


def test_counting_model_counts_rows_of_forwards_and_backwards() -> None:
    counted = CountingModel(linear_model())
    x = torch.rand(6, 4, requires_grad=True)
    counted(x).sum().backward()
    with torch.no_grad():
        counted(torch.rand(3, 4))
    assert (counted.forwards, counted.backwards) == (9, 6)


def test_generate_restores_the_mode_of_every_submodule() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3), nn.Dropout(0.5))
    model.train()
    model[1].eval()
    modes: list[bool] = []
    model.register_forward_hook(lambda module, *_: modes.append(module.training))
    Shift(offset=0.0).generate(model=model, x=torch.full((2, 4), 0.5), y=torch.tensor([0, 1]))
    assert modes and not any(modes)
    assert model.training and not model[1].training and model[2].training


# --------------------------------------------------------------------------------------------
# generate: checks, batching and the re-check


def test_generate_rechecks_the_ball_and_the_range() -> None:
    model = linear_model()
    x, y = torch.full((4, 4), 0.5), torch.tensor([0, 1, 2, 0])
    ok = Shift(offset=0.05).generate(model=model, x=x, y=y)
    assert torch.allclose(ok.perturbation, torch.full((4,), 0.05))
    with pytest.raises(AttackContractError, match=r"exceeds eps=0\.1"):
        Shift(offset=0.2).generate(model=model, x=x, y=y)
    with pytest.raises(AttackContractError, match="valid range"):
        Shift(offset=0.6, eps=None).generate(model=model, x=x, y=y)
    with pytest.raises(AttackContractError, match="NaN or inf"):
        Shift(offset=math.nan, eps=None).generate(model=model, x=x, y=y)


def test_generate_recomputes_accuracy_and_counts_passes() -> None:
    model = linear_model()
    x = torch.rand(10, 4, generator=torch.Generator().manual_seed(0)) * 0.9
    y = torch.zeros(10, dtype=torch.int64)
    result = Shift(offset=0.05).generate(model=model, x=x, y=y, batch_size=3)
    with torch.no_grad():
        expected = model(x + 0.05).argmax(1) == y
        clean = model(x).argmax(1) == y
    assert torch.equal(result.adv_correct, expected)
    assert torch.equal(result.clean_correct, clean)
    assert result.robust_accuracy == pytest.approx(float((expected & clean).float().mean()))
    assert result.forwards == 10 and result.backwards == 0


def test_generate_keys_randomness_by_position_or_given_indices() -> None:
    model = linear_model()
    x, y = torch.full((5, 4), 0.5), torch.zeros(5, dtype=torch.int64)
    attack = Shift(offset=0.0)
    attack.generate(model=model, x=x, y=y, batch_size=2)
    assert torch.cat(attack.seen_indices).tolist() == [0, 1, 2, 3, 4]
    attack.seen_indices.clear()
    attack.generate(model=model, x=x, y=y, batch_size=2, indices=np.array([7, 3, 9, 1, 0]))
    assert torch.cat(attack.seen_indices).tolist() == [7, 3, 9, 1, 0]
    with pytest.raises(DataError, match="same number of examples"):
        attack.generate(model=model, x=x, y=y, indices=[1, 2])
    with pytest.raises(DataError, match=MSG_NEGATIVE_INDEX.split("{")[0][:30]):
        attack.generate(model=model, x=x, y=y, indices=[0, 1, -2, 3, 4])


def test_generate_refuses_bad_inputs_before_any_work() -> None:
    model = linear_model()
    counted_calls: list[int] = []
    model.register_forward_hook(lambda *_: counted_calls.append(1))
    attack = Shift(offset=0.0)
    x, y = torch.full((2, 4), 0.5), torch.tensor([0, 1])
    with pytest.raises(DataError) as info:
        attack.generate(model=model, x=x * 3, y=y)
    assert str(info.value) == MSG_OUT_OF_BOUNDS.format(bounds=(0.0, 1.0), index=0, value=1.5)
    with pytest.raises(ConfigurationError, match="untargeted; it does not take 'targets'"):
        attack.generate(model=model, x=x, y=y, targets=y)
    with pytest.raises(DataError, match="same number of examples"):
        attack.generate(model=model, x=x, y=torch.tensor([0]))
    with pytest.raises(ConfigurationError, match="batch_size"):
        attack.generate(model=model, x=x, y=y, batch_size=0)
    assert counted_calls == []
    with pytest.raises(DataError, match=r"class indices in \[0, 3\)"):
        attack.generate(model=model, x=x, y=torch.tensor([0, 5]))

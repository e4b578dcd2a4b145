"""Square Attack: its schedule and update pattern computed by hand, the black-box contract on
the digits CNN (ball, range, queries only), targets hit, and batch-size independence."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.params import MSG_PARAM
from trustlab.robustness import AttackResult, Square, SquareTargeted, get_attack
from trustlab.robustness.square import MSG_IMAGE, p_schedule, stripe_pattern

LINF_EPS = 0.1
L2_EPS = 1.0
N = 32


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """The tiny models here run fastest on one thread; the caller's setting is restored."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_p_schedule_halves_at_the_reference_points() -> None:
    # With 10,000 queries, p_init holds up to iteration 10, then halves after each point.
    expected = {
        0: 0.8,
        10: 0.8,
        11: 0.4,
        50: 0.4,
        51: 0.2,
        201: 0.1,
        501: 0.05,
        1001: 0.025,
        2001: 0.0125,
        4001: 0.00625,
        6001: 0.003125,
        8001: 0.0015625,
        9999: 0.0015625,
    }
    for iteration, p in expected.items():
        assert p_schedule(iteration, p_init=0.8, n_queries=10_000) == pytest.approx(p)
    # With 1,000 queries the points come ten times sooner.
    assert p_schedule(2, p_init=0.8, n_queries=1_000) == pytest.approx(0.4)
    assert p_schedule(1, p_init=0.8, n_queries=1_000) == pytest.approx(0.8)


def test_stripe_pattern_of_size_two_by_hand() -> None:
    # Each half is one row of concentric rectangles around its centre column: the centre
    # gets 1 + 1/4, its neighbour 1/4; the bottom half is the negative of the top.
    row = torch.tensor([0.25, 1.25], dtype=torch.float64)
    expected = torch.stack([row, -row]) / (2**0.5 * row.norm())
    assert torch.allclose(stripe_pattern(2), expected)


def test_stripe_pattern_shape_and_signs() -> None:
    pattern = stripe_pattern(5)
    assert pattern.shape == (5, 5)
    assert float(pattern.norm()) == pytest.approx(1.0)
    assert bool((pattern[:2] > 0).all()) and bool((pattern[2:] < 0).all())
    # The peak of each half is at its centre.
    assert int(pattern[:2].argmax()) == 1 * 5 + 2
    assert int(pattern[2:].argmin()) == 1 * 5 + 2


@pytest.fixture(scope="module")
def square_linf(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> AttackResult:
    x, y = attack_inputs
    return Square(eps=LINF_EPS, n_queries=300).generate(model=digits_cnn, x=x[:N], y=y[:N])


def test_linf_square_stays_in_the_ball_and_range(
    square_linf: AttackResult, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x = attack_inputs[0][:N]
    assert float((square_linf.x_adv - x).abs().max()) <= LINF_EPS + 1e-6
    assert float(square_linf.x_adv.min()) >= 0.0 and float(square_linf.x_adv.max()) <= 1.0


def test_square_only_queries_and_stops_at_success(square_linf: AttackResult) -> None:
    assert square_linf.backwards == 0
    attacked = int(square_linf.clean_correct.sum())
    assert square_linf.forwards <= 300 * attacked
    # Broken examples leave early, so fewer queries are spent than the full budget.
    assert square_linf.success_rate > 0
    assert square_linf.forwards < 300 * attacked


def test_square_beats_random_noise(
    square_linf: AttackResult,
    digits_cnn: nn.Module,
    attack_inputs: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = attack_inputs[0][:N], attack_inputs[1][:N]
    generator = torch.Generator().manual_seed(0)
    signs = torch.randint(0, 2, x.shape, generator=generator) * 2 - 1
    with torch.no_grad():
        noisy = digits_cnn((x + LINF_EPS * signs).clamp(0, 1)).argmax(1)
    noise_accuracy = float((noisy == y).float().mean())
    assert square_linf.robust_accuracy < noise_accuracy - 0.1


def test_l2_square_stays_in_the_ball_and_breaks_examples(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = attack_inputs[0][:N], attack_inputs[1][:N]
    result = Square(norm="L2", eps=L2_EPS, n_queries=200).generate(model=digits_cnn, x=x, y=y)
    assert bool((result.perturbation <= L2_EPS + 1e-5).all())
    assert float(result.x_adv.min()) >= 0.0 and float(result.x_adv.max()) <= 1.0
    assert result.robust_accuracy < result.clean_accuracy - 0.3


def test_targeted_square_hits_its_targets(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = attack_inputs[0][:16], attack_inputs[1][:16]
    with torch.no_grad():
        targets = digits_cnn(x).argsort(dim=1, descending=True)[:, 1]
    result = SquareTargeted(eps=0.3, n_queries=300).generate(
        model=digits_cnn, x=x, y=y, targets=targets
    )
    with torch.no_grad():
        predicted = digits_cnn(result.x_adv).argmax(1)
    assert torch.equal(result.success, predicted == targets)
    assert result.success_rate >= 0.5
    assert bool((result.perturbation <= 0.3 + 1e-6).all())


@pytest.mark.parametrize("norm", ["Linf", "L2"])
def test_square_does_not_depend_on_batch_size(
    norm: str, digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = attack_inputs[0][:20], attack_inputs[1][:20]
    eps = LINF_EPS if norm == "Linf" else L2_EPS
    attack = Square(norm=norm, eps=eps, n_queries=60, seed=5)
    small = attack.generate(model=digits_cnn, x=x, y=y, batch_size=7)
    large = attack.generate(model=digits_cnn, x=x, y=y, batch_size=64)
    assert torch.equal(small.success, large.success)
    assert torch.allclose(small.x_adv, large.x_adv, atol=1e-6)
    other_seed = Square(norm=norm, eps=eps, n_queries=60, seed=6).generate(
        model=digits_cnn, x=x, y=y
    )
    assert not torch.equal(other_seed.x_adv, large.x_adv)


def test_square_never_asks_for_gradients() -> None:
    class NoGradients(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            assert not torch.is_grad_enabled() or not x.requires_grad
            flat = x.reshape(x.shape[0], -1)
            return torch.stack([flat.mean(dim=1), 1 - flat.mean(dim=1)], dim=1)

    x = torch.full((3, 1, 4, 4), 0.45)
    result = Square(eps=0.2, n_queries=30).generate(model=NoGradients(), x=x, y=[0, 0, 0])
    assert result.backwards == 0
    assert bool(result.success.all())  # pushing the mean below 0.5 flips the decision


def test_square_is_registered_under_its_names() -> None:
    assert get_attack("square") is Square
    assert get_attack("square-t") is SquareTargeted


def test_square_needs_image_inputs() -> None:
    model = nn.Linear(4, 2)
    with pytest.raises(DataError) as info:
        Square(eps=0.1).generate(model=model, x=torch.rand(2, 4), y=[0, 1])
    assert str(info.value) == MSG_IMAGE.format(owner="Square", shape=(2, 4))


def test_bad_hyperparameters_are_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        Square(eps=0.1, p_init=1.5)
    rule = "a finite float in (0, 1]"
    assert str(info.value) == MSG_PARAM.format(name="p_init", owner="Square", rule=rule, value=1.5)
    with pytest.raises(ConfigurationError) as info:
        Square(eps=0.1, loss="dlr")
    rule = "one of 'margin', 'ce'"
    assert str(info.value) == MSG_PARAM.format(name="loss", owner="Square", rule=rule, value="dlr")
    with pytest.raises(ConfigurationError, match="'norm' parameter of Square"):
        Square(norm="L1", eps=0.1)
    with pytest.raises(ConfigurationError, match="'n_queries' parameter of Square"):
        Square(eps=0.1, n_queries=0)

"""FAB and FAB-T: the exact boundary projections, minimal perturbations on linear models, the
attack contract on the digits CNN, and batch-size independence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linprog
from torch import nn

from trustlab.core.errors import ConfigurationError
from trustlab.core.params import MSG_PARAM
from trustlab.robustness import FAB, FABT, AttackResult, Norm, get_attack
from trustlab.robustness.fab import project_onto_boundary
from trustlab.robustness.norms import per_example_norm

LINF_EPS = 0.1


class Affine(nn.Module):
    """Logits ``x @ weight.T + bias`` for flat inputs."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(weight)
            self.linear.bias.copy_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.reshape(x.shape[0], -1))


# --------------------------------------------------------------------------------------------
# The projection, against an LP solver (Linf, L1) and a bisection on the KKT conditions (L2)


def _problems(seed: int, n: int = 12, d: int = 7) -> tuple[torch.Tensor, ...]:
    rng = np.random.default_rng(seed)
    points = rng.uniform(0.05, 0.95, size=(n, d))
    w = rng.normal(size=(n, d))
    w[0, :3] = 0.0  # some zero weights
    # Hyperplanes through a random point of the box: always reachable inside it.
    b = (w * rng.uniform(0, 1, size=(n, d))).sum(axis=1)
    return (torch.tensor(points), torch.tensor(w), torch.tensor(b))


def _lp_min_norm(point: np.ndarray, w: np.ndarray, b: float, norm: Norm) -> float:
    d = len(point)
    lo, hi = -point, 1 - point  # the step keeps point + step in [0, 1]
    need = b - w @ point
    if norm is Norm.LINF:
        # Variables (step, t): minimise t with -t <= step_i <= t.
        cost = np.r_[np.zeros(d), 1.0]
        a_ub = np.block([[np.eye(d), -np.ones((d, 1))], [-np.eye(d), -np.ones((d, 1))]])
        res = linprog(
            cost,
            A_ub=a_ub,
            b_ub=np.zeros(2 * d),
            A_eq=np.r_[w, 0.0][None],
            b_eq=[need],
            bounds=[*zip(lo, hi, strict=True), (0, None)],
        )
    else:
        # step = up - down with up in [0, hi], down in [0, -lo]; minimise the sum of both.
        res = linprog(
            np.ones(2 * d),
            A_eq=np.r_[w, -w][None],
            b_eq=[need],
            bounds=[*((0, h) for h in hi), *((0, -lo_i) for lo_i in lo)],
        )
    assert res.status == 0
    return float(res.fun)


@pytest.mark.parametrize("norm", [Norm.LINF, Norm.L1])
def test_projection_matches_a_linear_program(norm: Norm) -> None:
    points, w, b = _problems(seed=1)
    steps = project_onto_boundary(points, w, b, norm=norm)
    moved = points + steps
    assert torch.allclose((w * moved).sum(dim=1), b, atol=1e-9)
    assert bool(((moved >= -1e-12) & (moved <= 1 + 1e-12)).all())
    sizes = per_example_norm(steps, norm)
    for i in range(points.shape[0]):
        optimum = _lp_min_norm(points[i].numpy(), w[i].numpy(), float(b[i]), norm)
        assert float(sizes[i]) == pytest.approx(optimum, rel=1e-6, abs=1e-9)


def _l2_by_bisection(point: torch.Tensor, w: torch.Tensor, b: float) -> torch.Tensor:
    """KKT: the L2-minimal step onto the hyperplane in the box is clip(lam * w, lo, hi)."""
    lo, hi = -point, 1 - point
    need = b - float(w @ point)
    sign = 1.0 if need >= 0 else -1.0
    low, high = 0.0, 1e6
    for _ in range(200):
        lam = (low + high) / 2
        reached = float(w @ torch.clamp(sign * lam * w, lo, hi))
        low, high = (lam, high) if sign * reached < abs(need) else (low, lam)
    return torch.clamp(sign * high * w, lo, hi)


def test_l2_projection_satisfies_the_kkt_conditions() -> None:
    points, w, b = _problems(seed=2)
    steps = project_onto_boundary(points, w, b, norm=Norm.L2)
    for i in range(points.shape[0]):
        expected = _l2_by_bisection(points[i], w[i], float(b[i]))
        assert torch.allclose(steps[i], expected, atol=1e-7)


def test_projection_without_a_solution_in_the_box_goes_to_the_nearest_corner() -> None:
    points = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    w = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    for norm in Norm:
        steps = project_onto_boundary(
            points, w, torch.tensor([10.0], dtype=torch.float64), norm=norm
        )
        assert torch.allclose(steps, torch.tensor([[0.5, 0.5]], dtype=torch.float64))


def test_projection_respects_custom_bounds() -> None:
    point = torch.tensor([[0.0, 0.0]])
    w = torch.tensor([[1.0, 1.0]])
    # Reaching x1 + x2 = 3 needs a step of 1.5 per coordinate; the box [-1, 2] allows it.
    steps = project_onto_boundary(point, w, torch.tensor([3.0]), norm=Norm.LINF, bounds=(-1, 2))
    assert torch.allclose(steps, torch.tensor([[1.5, 1.5]]))


# --------------------------------------------------------------------------------------------
# Minimal perturbations on a linear model, where the answer is known


@pytest.mark.parametrize(("norm", "dual"), [("Linf", 1.0), ("L2", 2.0), ("L1", float("inf"))])
def test_fab_finds_the_minimal_perturbation_of_a_linear_classifier(norm: str, dual: float) -> None:
    weight = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, -2.0, 0.5, 1.5]])
    model = Affine(weight, torch.tensor([0.0, -0.2]))
    x = torch.tensor([[0.1, 0.4, 0.2, 0.1], [0.3, 0.5, 0.1, 0.2]])
    y = torch.tensor([0, 0])
    gap = (x @ weight[1] - 0.2).abs()
    # The distance to the hyperplane in a norm is |w.x + b| / (dual norm of w).
    exact = gap / torch.linalg.vector_norm(weight[1], ord=dual)
    result = FAB(norm=norm, steps=100, bounds=(-10.0, 10.0)).generate(model=model, x=x, y=y)
    assert bool(result.success.all())
    assert bool((result.perturbation >= exact * (1 - 1e-4)).all())
    assert torch.allclose(result.perturbation, exact, rtol=0.02)


def test_fab_counts_one_backward_per_class_and_step() -> None:
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]])
    model = Affine(weight, torch.zeros(3))
    x = torch.tensor([[0.9, 0.1]])
    result = FAB(steps=3, early_stop=False).generate(model=model, x=x, y=[0])
    # Each step: one forward for the gradients of all 3 logits (3 backward passes) and one
    # forward to check the new point.
    assert (result.forwards, result.backwards) == (6, 9)


# --------------------------------------------------------------------------------------------
# The contract on the digits CNN


@pytest.fixture(scope="module")
def fab_t_result(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> AttackResult:
    x, y = attack_inputs
    return FABT(eps=LINF_EPS, steps=30, n_targets=3).generate(model=digits_cnn, x=x[:32], y=y[:32])


def test_fab_t_stays_in_the_ball_and_the_range(
    fab_t_result: AttackResult, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x = attack_inputs[0][:32]
    result = fab_t_result
    assert bool((result.perturbation <= LINF_EPS + 1e-6).all())
    assert float(result.x_adv.min()) >= 0.0 and float(result.x_adv.max()) <= 1.0
    # Where it failed, the clean input comes back unchanged.
    failed = ~result.success
    assert torch.equal(result.x_adv[failed], x[failed])
    assert result.backwards > 0


def test_fab_t_beats_random_noise(
    fab_t_result: AttackResult,
    digits_cnn: nn.Module,
    attack_inputs: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = attack_inputs[0][:32], attack_inputs[1][:32]
    generator = torch.Generator().manual_seed(0)
    signs = torch.randint(0, 2, x.shape, generator=generator) * 2 - 1
    noisy = (x + LINF_EPS * signs).clamp(0, 1)
    with torch.no_grad():
        noise_accuracy = float((digits_cnn(noisy).argmax(1) == y).float().mean())
    assert fab_t_result.robust_accuracy < noise_accuracy - 0.15


def test_fab_t_reports_targets_among_the_most_likely_other_classes(
    fab_t_result: AttackResult,
    digits_cnn: nn.Module,
    attack_inputs: tuple[torch.Tensor, torch.Tensor],
) -> None:
    x, y = attack_inputs[0][:32], attack_inputs[1][:32]
    with torch.no_grad():
        ranked = digits_cnn(x).argsort(dim=1, descending=True)
    targets = fab_t_result.targets
    assert targets is not None
    for i in range(32):
        assert int(targets[i]) in ranked[i, 1:4].tolist()
    attacked = fab_t_result.clean_correct
    assert bool((targets[attacked] != y[attacked]).all())


def test_fab_t_does_not_depend_on_batch_size(
    digits_cnn: nn.Module, attack_inputs: tuple[torch.Tensor, torch.Tensor]
) -> None:
    x, y = attack_inputs[0][:20], attack_inputs[1][:20]
    attack = FABT(eps=LINF_EPS, steps=8, restarts=2, n_targets=2, seed=3)
    small = attack.generate(model=digits_cnn, x=x, y=y, batch_size=7)
    large = attack.generate(model=digits_cnn, x=x, y=y, batch_size=64)
    assert torch.equal(small.success, large.success)
    assert torch.allclose(small.x_adv, large.x_adv, atol=1e-5)


def test_fab_is_registered_under_its_names() -> None:
    assert get_attack("fab") is FAB
    assert get_attack("fab-t") is FABT


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        ({"alpha_max": 1.5}, "a finite float in [0, 1]"),
        ({"eta": 0.5}, "a finite float >= 1"),
        ({"beta": 0.0}, "a finite float in (0, 1]"),
    ],
)
def test_bad_hyperparameters_are_refused(options: dict[str, float], rule: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        FABT(eps=0.1, **options)
    ((name, value),) = options.items()
    assert str(info.value) == MSG_PARAM.format(name=name, owner="FABT", rule=rule, value=value)


def test_bad_norm_and_steps_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="'norm' parameter of FAB"):
        FAB(norm="L3")
    with pytest.raises(ConfigurationError, match="'steps' parameter of FABT"):
        FABT(steps=0)

"""Exponentiated gradient (Agarwal et al., 2018): the reductions approach for PyTorch models."""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linprog
from torch import nn

from trustlab.core.checks import as_input_tensor, check_batch_size, compute_logits
from trustlab.core.params import (
    Boolean,
    Constraint,
    Integer,
    Optional,
    Options,
    Real,
    Seed,
    validate_params,
)
from trustlab.core.training import Step, train
from trustlab.core.typing import ArrayLike, FloatArray, IntArray
from trustlab.fairness._inputs import as_class_labels, as_groups
from trustlab.fairness._moments import REDUCTION_CRITERIA, Moments
from trustlab.fairness._training import TrainingData, logits_and_margin, training_data
from trustlab.fairness.base import MITIGATIONS, MitigationReport, ModelMitigation, report_of
from trustlab.fairness.metrics import SensitiveFeatures

__all__ = ["ExponentiatedGradient"]

MSG_NOT_CONVERGED = (
    "ExponentiatedGradient ran all max_iter = {rounds} rounds and ended with a duality gap of "
    "{gap:.3g}, above its convergence threshold nu = {nu:.3g}: the randomised classifier may "
    "break the bound. "
    "Raise max_iter, or let each best response move further (more epochs or a larger lr)."
)
MSG_INFEASIBLE = (
    "ExponentiatedGradient's randomised classifier exceeds the bound on its own training rows "
    "by {violation:.3g}, more than the {allowed:.3g} the reduction allows: its best responses "
    "cannot reach the bound. Let each move further (more epochs or a larger lr)."
)

# Fairlearn's constants (fairlearn/reductions/_exponentiated_gradient).
_ACCURACY_MUL = 0.5
_REGRET_CHECK_START_T = 5
_REGRET_CHECK_INCREASE_T = 1.6
_SHRINK_REGRET = 0.8
_SHRINK_ETA = 0.8
_MIN_ITER = 5
_PRECISION = 1e-8
_GAP_MULTIPLIERS = (1.0, 2.0, 5.0, 10.0)


@dataclass
class _Gap:
    low: float
    value: float
    high: float

    def gap(self) -> float:
        return max(self.value - self.low, self.high - self.value)


@MITIGATIONS.register("exponentiated_gradient")
class ExponentiatedGradient(ModelMitigation):
    """Exponentiated gradient reduction for any PyTorch classifier (Agarwal et al., 2018).

    In-processing. Fair classification ``min_Q err(Q)`` subject to ``gamma(Q) <= bound`` over
    randomised classifiers ``Q`` (distributions over models) is solved as a zero-sum game
    between the model player and the Lagrange multipliers ``lambda`` (``||lambda||_1 <= B``,
    ``B = 1 / bound``): the multipliers follow exponentiated gradient on the constraint
    violations, and each round the model player best-responds by training a classifier on the
    cost-sensitive problem the multipliers define (labels ``signed weight > 0``, sample
    weights ``|signed weight|``) through :func:`trustlab.core.training.train`. The returned
    randomised classifier is the average of the best responses (or, where smaller, the
    linear-programming mixture of the responses found, Fairlearn's ``run_linprog_step``); the
    run stops once the duality gap is below ``nu``. Step size, its shrinking and ``nu`` follow
    Fairlearn's ``ExponentiatedGradient`` exactly.

    Constraints (``criterion``), as Fairlearn's moments, each relative to the overall rate:
    ``"demographic_parity"`` bounds ``|P(h=1 | A=a) - P(h=1)|``; ``"equal_opportunity"`` the
    same on rows with ``y = 1``; ``"equalized_odds"`` on rows with ``y = 1`` and ``y = 0``;
    ``"bounded_group_loss"`` bounds every group's 0-1 error (Agarwal et al., 2019) and reports
    the worst group's error as its gap. Fairlearn's moments compare each group with the
    overall rate, so with two groups a bound ``eps`` allows a between-groups gap up to about
    ``2 eps`` at most; choose ``bound`` accordingly.

    Differences from the paper and Fairlearn: a best response is a neural network trained for
    ``epochs`` epochs by gradient descent, not an exact cost-sensitive oracle; with
    ``warm_start=True`` (default) each starts from the previous best response's weights
    instead of the initial ones, which makes a round cheap; the lower bound of the duality gap
    uses the same approximate oracle. ``predictor="best"`` predicts with the single model found
    with the lowest training error among those within the bound (Agarwal et al. note that a
    deterministic classifier may violate the constraints; this one satisfies them on the
    training rows).

    Parameters
    ----------
    criterion : {"demographic_parity", "equalized_odds", "equal_opportunity", \
"bounded_group_loss"}
        The constraint.
    bound : float, default 0.01
        ``eps``: the largest allowed moment value, > 0.
    max_iter : int, default 50
        Most rounds.
    nu : float or None, default None
        Convergence threshold of the duality gap; None takes Fairlearn's default.
    eta0 : float, default 2.0
        Initial step size of the multipliers (times ``1 / B``).
    run_linprog_step : bool, default True
        Also consider the best mixture of the responses found (a linear program) each round.
    warm_start : bool, default True
        Start each best response from the previous one.
    predictor : {"randomized", "best"}, default "randomized"
        What :meth:`predict` uses: the randomised classifier, or the best deterministic one.
    epochs : int, default 3
        Epochs of each best response.
    lr, batch_size, weight_decay, seed
        Training of the best responses (Adam), as every model mitigation.

    Attributes
    ----------
    models_ : list of torch.nn.Module
        Every best response found (in eval mode).
    weights_ : ndarray of float64
        The randomised classifier's probability of each model.
    best_index_ : int
        The index of the best deterministic model.
    n_oracle_calls_ : int
        Best responses trained.
    best_gap_ : float
        The duality gap of the returned classifier.
    nu_ : float
        The convergence threshold used (``nu``, or Fairlearn's default computed from the
        first best response).
    converged_ : bool
        Whether ``best_gap_ < nu_``. When it is not, :meth:`fit` warns (``UserWarning``).
    violation_ : float
        How far the randomised classifier's largest moment exceeds ``bound`` on the training
        rows (<= 0 within it). The reduction allows ``bound * (1 + 2 * nu_)``; beyond that
        :meth:`fit` warns: the duality gap is measured against the best responses found, so a
        best response too weak to move (too few epochs, too small a learning rate) can look
        converged while the bound is far off.
    history_ : list of dict
        Per round: ``gap`` (duality gap) and ``violation`` (worst moment minus bound).
    model_ : torch.nn.Module
        The best deterministic model.
    gap_, accuracy_ : float
        Gap (criterion) and accuracy of :meth:`predict`'s predictions on the training rows.

    References
    ----------
    .. [1] A. Agarwal, A. Beygelzimer, M. Dudík, J. Langford and H. Wallach, "A Reductions
       Approach to Fair Classification", ICML 2018.
    .. [2] A. Agarwal, M. Dudík and Z. S. Wu, "Fair Regression: Quantitative Definitions and
       Reduction-Based Algorithms", ICML 2019 (bounded group loss).

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> x = torch.randn(300, 3)
    >>> group = (x[:, 0] > 0).long()
    >>> y = ((x[:, 1] + group) > 0.5).long()
    >>> eg = ExponentiatedGradient(bound=0.02, max_iter=15, epochs=3, lr=0.05)
    >>> eg = eg.fit(model=torch.nn.Linear(3, 2), x=x, y=y, sensitive_features=group)
    >>> eg.predict(x=x).shape
    (300,)
    >>> eg.converged_ and eg.violation_ <= 0
    True
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "criterion": Options(*REDUCTION_CRITERIA),
        "bound": Real(low=0, closed="neither"),
        "max_iter": Integer(low=1),
        "nu": Optional(Real(low=0, closed="neither")),
        "eta0": Real(low=0, closed="neither"),
        "run_linprog_step": Boolean(),
        "warm_start": Boolean(),
        "predictor": Options("randomized", "best"),
    }

    def __init__(
        self,
        *,
        criterion: str = "demographic_parity",
        bound: float = 0.01,
        max_iter: int = 50,
        nu: float | None = None,
        eta0: float = 2.0,
        run_linprog_step: bool = True,
        warm_start: bool = True,
        predictor: str = "randomized",
        epochs: int = 3,
        lr: float = 1e-3,
        batch_size: int = 256,
        weight_decay: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.criterion = criterion
        self.bound = bound
        self.max_iter = max_iter
        self.nu = nu
        self.eta0 = eta0
        self.run_linprog_step = run_linprog_step
        self.warm_start = warm_start
        self.predictor = predictor
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.seed = seed
        validate_params(self)

    # -- fitting ---------------------------------------------------------------------------
    def fit(
        self,
        *,
        model: nn.Module,
        x: ArrayLike,
        y: ArrayLike,
        sensitive_features: SensitiveFeatures,
    ) -> ExponentiatedGradient:
        """Run the game on ``(x, y)``; ``model`` is the template every best response copies.

        Returns ``self``; the template itself is left unchanged.
        """
        data = training_data(
            x=x, y=y, sensitive_features=sensitive_features, owner=type(self).__name__
        )
        self._template = copy.deepcopy(model)
        self._data = data
        self._moments = Moments(
            criterion=self.criterion,
            y=data.y.numpy(),
            groups=data.groups.codes,
            n_groups=data.groups.n_groups,
            bound=self.bound,
        )
        self._models: list[nn.Module] = []
        self._errors: list[float] = []
        self._gammas: list[FloatArray] = []
        self._calls = 0
        self._h: list[FloatArray] = []
        self._lp_cache: tuple[int, FloatArray, FloatArray, _Gap] | None = None
        weights, gap, nu, history = self._run()
        violation = float(np.max(weights @ np.array(self._gammas) - self.bound))
        self.models_ = self._models
        self.weights_ = weights
        self.best_gap_ = gap
        self.nu_ = nu
        self.converged_ = gap < nu
        self.violation_ = violation
        self.history_ = history
        self.n_oracle_calls_ = self._calls
        self.best_index_ = self._best_deterministic()
        self.model_ = self._models[self.best_index_]
        predictions = self.predict(x=data.x)
        self.accuracy_, self.gap_ = self._score(
            y=data.y.numpy(), y_pred=predictions, codes=data.groups.codes
        )
        for name in ("_template", "_data", "_moments", "_lp_cache", "_h", "_errors", "_gammas"):
            delattr(self, name)
        allowed = self.bound * (1.0 + 2.0 * nu)
        if violation > allowed:
            message = MSG_INFEASIBLE.format(violation=violation, allowed=allowed)
            warnings.warn(message, UserWarning, stacklevel=2)
        elif not self.converged_:
            message = MSG_NOT_CONVERGED.format(rounds=len(history), gap=gap, nu=nu)
            warnings.warn(message, UserWarning, stacklevel=2)
        return self

    def _train(self, model: nn.Module, data: TrainingData) -> None:  # pragma: no cover
        raise NotImplementedError  # fit is overridden: the game trains many models

    def _run(self) -> tuple[FloatArray, float, float, list[dict[str, float]]]:
        moments, bound = self._moments, self.bound
        big_b = 1.0 / bound
        n_constraints = moments.n_constraints
        theta = np.zeros(n_constraints)
        lambda_sum = np.zeros(n_constraints)
        counts: dict[int, float] = {}
        gaps: list[float] = []
        gaps_eg: list[float] = []
        mixtures: list[FloatArray] = []
        history: list[dict[str, float]] = []
        nu = math.inf if self.nu is None else self.nu
        eta = self.eta0 / big_b
        last_checked, last_gap = _REGRET_CHECK_START_T, math.inf
        for t in range(self.max_iter):
            lam = big_b * np.exp(theta) / (1.0 + np.exp(theta).sum())
            lambda_sum += lam
            lambda_eg = lambda_sum / (t + 1)
            index = self._best_response(lam)
            if t == 0:
                h = self._h[index]
                if self.nu is None:
                    y = self._moments.y
                    nu = _ACCURACY_MUL * float(np.abs(h - y).std()) / math.sqrt(len(y))
            counts[index] = counts.get(index, 0.0) + 1.0
            q_eg = self._mixture(counts)
            result_eg = self._eval_gap(q_eg, lambda_eg, nu, big_b)
            gaps_eg.append(result_eg.gap())
            q_best, gap_best = q_eg, result_eg.gap()
            if t > 0 and self.run_linprog_step:
                q_lp, result_lp = self._solve_linprog(nu, big_b)
                if result_lp.gap() <= gap_best:
                    q_best, gap_best = q_lp, result_lp.gap()
            mixtures.append(q_best)
            gaps.append(gap_best)
            gamma = self._gammas[index]
            history.append({"gap": gap_best, "violation": moments.worst_violation(gamma)})
            if gaps[t] < nu and t >= _MIN_ITER:
                break
            if t >= last_checked * _REGRET_CHECK_INCREASE_T:
                best_gap = min(gaps_eg)
                if best_gap > last_gap * _SHRINK_REGRET:
                    eta *= _SHRINK_ETA
                last_checked, last_gap = t, best_gap
            theta += eta * (gamma - bound)
        lowest = min(gaps)
        best_t = max(t for t, gap in enumerate(gaps) if gap <= lowest + _PRECISION)
        weights = np.zeros(len(self._models))
        chosen = mixtures[best_t]
        weights[: len(chosen)] = chosen
        return weights, gaps[best_t], nu, history

    @staticmethod
    def _mixture(counts: dict[int, float]) -> FloatArray:
        q = np.zeros(max(counts) + 1)
        for index, count in counts.items():
            q[index] = count
        return q / q.sum()

    def _project(self, lam: FloatArray) -> FloatArray:
        """Fairlearn's projection: of each (+, -) pair, keep only the positive difference."""
        if self.criterion == "bounded_group_loss":
            return lam
        projected = lam.copy()
        diff = lam[0::2] - lam[1::2]
        projected[0::2] = np.maximum(diff, 0.0)
        projected[1::2] = np.maximum(-diff, 0.0)
        return projected

    def _eval(self, q: FloatArray, lam: FloatArray, big_b: float) -> tuple[float, float]:
        """The Lagrangian of mixture ``q`` at ``lam`` and its upper bound."""
        errors = np.array(self._errors[: len(q)])
        gammas = np.array(self._gammas[: len(q)])
        error = float(q @ errors)
        gamma = q @ gammas
        value = error + float(self._project(lam) @ (gamma - self.bound))
        worst = float(np.max(gamma - self.bound))
        return value, error + big_b * max(worst, 0.0)

    def _eval_gap(self, q: FloatArray, lam: FloatArray, nu: float, big_b: float) -> _Gap:
        value, high = self._eval(q, lam, big_b)
        result = _Gap(low=value, value=value, high=high)
        for multiplier in _GAP_MULTIPLIERS:
            index = self._best_response(multiplier * lam)
            single = np.zeros(index + 1)
            single[index] = 1.0
            result.low = min(result.low, self._eval(single, lam, big_b)[0])
            if result.gap() > nu + _PRECISION:
                break
        return result

    def _solve_linprog(self, nu: float, big_b: float) -> tuple[FloatArray, _Gap]:
        n_models = len(self._models)
        if self._lp_cache is not None and self._lp_cache[0] == n_models:
            return self._lp_cache[1], self._lp_cache[3]
        gammas = np.array(self._gammas).T  # (constraints, models)
        n_constraints = gammas.shape[0]
        cost = np.concatenate([np.array(self._errors), [big_b]])
        a_ub = np.concatenate([gammas - self.bound, -np.ones((n_constraints, 1))], axis=1)
        a_eq = np.concatenate([np.ones((1, n_models)), np.zeros((1, 1))], axis=1)
        result = linprog(
            cost,
            A_ub=a_ub,
            b_ub=np.zeros(n_constraints),
            A_eq=a_eq,
            b_eq=np.ones(1),
            bounds=(0.0, None),
            method="highs",
        )
        q = np.clip(result.x[:-1], 0.0, None)
        q = q / q.sum()
        lam = np.clip(-np.asarray(result.ineqlin.marginals), 0.0, None)
        gap = self._eval_gap(q, lam, nu, big_b)
        self._lp_cache = (len(self._models), q, lam, gap)
        return q, gap

    def _best_response(self, lam: FloatArray) -> int:
        """Train a classifier on the cost-sensitive problem of ``lam``; keep it if it lowers
        the Lagrangian below every model found so far. Return the best model's index."""
        moments = self._moments
        signed = moments.signed_weights(lam)
        labels = torch.from_numpy((signed > 0).astype(np.int64))
        weights = np.abs(signed)
        weights = len(weights) * weights / max(weights.sum(), 1e-300)
        start = self._models[-1] if self.warm_start and self._models else self._template
        model = copy.deepcopy(start)
        owner = type(self).__name__
        train(
            model,
            data={"x": self._data.x, "y": labels, "weight": torch.from_numpy(weights).float()},
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed + self._calls,
            lr=self.lr,
            weight_decay=self.weight_decay,
            optimizer="adam",
            loss=lambda step: _weighted_loss(step, owner=owner),
            owner=owner,
        )
        self._calls += 1
        logits = compute_logits(model=model, x=self._data.x, batch_size=4096)
        h = logits.argmax(dim=1).numpy().astype(np.float64)
        error = float(np.mean(np.abs(h - moments.y)))
        gamma = moments.gamma(h)
        value = error + float(gamma @ lam)
        if self._models:
            values = np.array(self._errors) + np.array(self._gammas) @ lam
            best = int(np.argmin(values))
            if not value < values[best] - _PRECISION:
                return best
        model.eval()
        self._models.append(model)
        self._errors.append(error)
        self._gammas.append(gamma)
        self._h.append(h)
        return len(self._models) - 1

    def _best_deterministic(self) -> int:
        errors = np.array(self._errors)
        violations = np.array([self._moments.worst_violation(g) for g in self._gammas])
        feasible = violations <= 0
        if feasible.any():
            return int(np.flatnonzero(feasible)[np.argmin(errors[feasible])])
        return int(np.argmin(errors + violations / self.bound))

    # -- prediction ------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "weights_"):
            super()._check_fitted()

    def positive_probability(self, *, x: ArrayLike, batch_size: int = 1024) -> FloatArray:
        """The randomised classifier's probability of predicting 1, shape (n_examples,)."""
        self._check_fitted()
        size = check_batch_size(batch_size, owner=f"{type(self).__name__}.positive_probability")
        inputs = as_input_tensor(x)
        probability = np.zeros(inputs.shape[0])
        for weight, model in zip(self.weights_, self.models_, strict=True):
            if weight > 0:
                logits = compute_logits(model=model, x=inputs, batch_size=size)
                probability += weight * logits.argmax(dim=1).numpy()
        return np.clip(probability, 0.0, 1.0)

    def predict(self, *, x: ArrayLike, batch_size: int = 1024, seed: int = 0) -> IntArray:
        """Hard predictions: a draw from the randomised classifier (seeded), or the best
        deterministic model's with ``predictor="best"``."""
        self._check_fitted()
        if self.predictor == "best":
            return super().predict(x=x, batch_size=batch_size)
        probability = self.positive_probability(x=x, batch_size=batch_size)
        seed = Seed.check(seed, name="seed", owner=f"{type(self).__name__}.predict")
        draws = np.random.default_rng(seed).random(len(probability))
        return (draws < probability).astype(np.int64)

    def _score(self, *, y: IntArray, y_pred: IntArray, codes: IntArray) -> tuple[float, float]:
        accuracy = float(np.mean(y == y_pred))
        if self.criterion == "bounded_group_loss":
            errors = [np.mean(y[codes == a] != y_pred[codes == a]) for a in np.unique(codes)]
            return accuracy, float(max(errors))
        report = report_of(
            criterion=self.criterion, y_true=y, y_pred=y_pred, sensitive_features=codes
        )
        return report.accuracy, report.gap

    def evaluate(
        self, *, x: ArrayLike, y: ArrayLike, sensitive_features: SensitiveFeatures
    ) -> MitigationReport:
        """Accuracy and gap (worst group error for bounded group loss) of :meth:`predict`."""
        labels = as_class_labels(y, name="y")
        groups = as_groups(sensitive_features, n_examples=len(labels), other="y")
        accuracy, gap = self._score(y=labels, y_pred=self.predict(x=x), codes=groups.codes)
        return MitigationReport(
            criterion=self.criterion, accuracy=accuracy, gap=gap, n_examples=len(labels)
        )


def _weighted_loss(step: Step, *, owner: str) -> torch.Tensor:
    logits, _ = logits_and_margin(step, owner=owner)
    per_row = F.cross_entropy(logits, step.batch["y"], reduction="none")
    weight = step.batch["weight"]
    return (per_row * weight).sum() / max(len(weight), 1)

"""Knockoff Nets: stealing a model with natural images from a surrogate pool (Orekondy et al.)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.checks import as_input_tensor, as_label_tensor, check_same_length
from trustlab.core.errors import ConfigurationError
from trustlab.core.params import Constraint, Integer, Options, Real, validate_params
from trustlab.core.typing import ArrayLike
from trustlab.extraction._surrogate import surrogate_outputs
from trustlab.extraction.base import ExtractionAttack, _Session
from trustlab.extraction.registry import register_attack

__all__ = ["SAMPLING", "KnockoffNets"]

SAMPLING = ("random", "adaptive")

MSG_POOL_LABELS = (
    "KnockoffNets(sampling='adaptive') needs pool_labels: one integer class of the pool per "
    "row of pool (the actions of the bandit)."
)
MSG_POOL_TOO_SMALL = (
    "KnockoffNets was asked for {budget} queries but its pool has only {n_pool} rows, and it "
    "queries each pool row at most once: it stops after {n_pool} queries. Pass a larger pool "
    "to spend the whole budget."
)


@register_attack("knockoff-nets")
class KnockoffNets(ExtractionAttack):
    """Knockoff Nets (Orekondy et al., 2019): query natural images from a surrogate pool.

    ``sampling="random"`` queries ``budget`` pool images drawn uniformly without replacement
    and trains the copy on the answers once. Each pool image is queried at most once, so a
    budget larger than the pool stops at the pool's size: the attack then warns and says so in
    :attr:`~trustlab.extraction.base.ExtractionResult.notes`.

    ``sampling="adaptive"`` treats the pool's classes (``pool_labels``, e.g. the classes of
    the attacker's own data set) as the arms of a gradient bandit. Each query draws a class
    ``a`` from ``softmax(H)`` and an unused image of that class; after the victim answers
    ``y``, the reward combines certainty ``y_(1) - y_(2)`` (top-1 minus top-2), diversity
    ``sum_k max(0, y_k - mean of the last diversity_window answers_k)`` and the copy's loss
    ``-sum_k y_k log softmax(s(x))_k`` before training on it. Each of the three is
    standardised with its running mean and standard deviation and they are summed. The
    preferences follow the gradient-bandit update ``H_a += bandit_lr (r - r_bar)(1 - pi_a)``
    and ``H_b -= bandit_lr (r - r_bar) pi_b`` for the other classes, ``r_bar`` being the
    running mean reward.

    Departures from the paper: queries are sent in rounds of ``round_size``; every reward of a
    round uses the copy as it was at the start of the round, and the copy is trained on the
    whole transfer set after each round (the paper updates the copy after every query). The
    standardisation of the rewards follows ART's implementation. For encoder oracles only the
    loss reward (mean squared error to the victim's embedding) is used.

    Threat model: black-box query access; the attacker owns a pool of natural inputs from a
    related distribution, with its own labels for adaptive sampling; no victim training data.

    Parameters
    ----------
    sampling : {"random", "adaptive"}, default="random"
        How pool images are chosen.
    pool : array-like of shape (n_pool, ...)
        The attacker's images.
    pool_labels : array-like of int, shape (n_pool,), optional
        Classes of the pool images; required for adaptive sampling.
    round_size : int, default=100
        Queries per round (adaptive sampling), >= 1.
    bandit_lr : float, default=0.1
        Step size of the gradient bandit, > 0.
    diversity_window : int, default=25
        Answers averaged by the diversity reward, >= 1.
    epochs, lr, batch_size, seed, embedding_loss
        See :class:`~trustlab.extraction.base.ExtractionAttack`.

    Raises
    ------
    ConfigurationError
        At construction, if a parameter is invalid or adaptive sampling has no
        ``pool_labels``.

    References
    ----------
    .. [1] T. Orekondy, B. Schiele and M. Fritz, "Knockoff Nets: Stealing Functionality of
       Black-Box Models", CVPR 2019.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from trustlab.extraction.oracle import LocalOracle
    >>> _ = torch.manual_seed(0)
    >>> pool, classes = torch.randn(60, 4), torch.randint(0, 3, (60,))
    >>> attack = KnockoffNets(sampling="adaptive", pool=pool, pool_labels=classes,
    ...                       round_size=10, epochs=1)
    >>> result = attack.extract(oracle=LocalOracle(model=nn.Linear(4, 2)),
    ...                         surrogate=nn.Linear(4, 2), budget=30)
    >>> result.queries_used, len(result.history)
    (30, 3)
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "sampling": Options(*SAMPLING),
        "round_size": Integer(low=1),
        "bandit_lr": Real(low=0, closed="neither"),
        "diversity_window": Integer(low=1),
    }

    def __init__(
        self,
        *,
        sampling: str = "random",
        pool: ArrayLike,
        pool_labels: ArrayLike | None = None,
        round_size: int = 100,
        bandit_lr: float = 0.1,
        diversity_window: int = 25,
        epochs: int = 30,
        lr: float = 1e-3,
        batch_size: int = 64,
        seed: int = 0,
        embedding_loss: str = "mse",
    ) -> None:
        super().__init__(
            epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, embedding_loss=embedding_loss
        )
        self.sampling = sampling
        self.pool = pool
        self.pool_labels = pool_labels
        self.round_size = round_size
        self.bandit_lr = bandit_lr
        self.diversity_window = diversity_window
        validate_params(self)
        if self.sampling == "adaptive" and self.pool_labels is None:
            raise ConfigurationError(MSG_POOL_LABELS)

    def _run(self, *, session: _Session, surrogate: nn.Module) -> None:
        pool = as_input_tensor(self.pool)
        if session.remaining > pool.shape[0]:
            session.note(
                MSG_POOL_TOO_SMALL.format(budget=session.remaining, n_pool=int(pool.shape[0]))
            )
        if self.sampling == "random":
            order = torch.randperm(pool.shape[0], generator=self._generator())
            session.ask(pool[order[: session.remaining]])
            self._train(session=session, surrogate=surrogate)
            return
        if self.pool_labels is None:  # checked at construction
            raise ConfigurationError(MSG_POOL_LABELS)
        classes = as_label_tensor(self.pool_labels)
        check_same_length(
            first="pool", n_first=pool.shape[0], second="pool_labels", n_second=len(classes)
        )
        self._adaptive(session=session, surrogate=surrogate, pool=pool, classes=classes.numpy())

    def _adaptive(
        self, *, session: _Session, surrogate: nn.Module, pool: torch.Tensor, classes: np.ndarray
    ) -> None:
        rng = np.random.default_rng(self.seed)
        actions = np.unique(classes)
        unused = {int(a): list(rng.permutation(np.flatnonzero(classes == a))) for a in actions}
        preferences = np.zeros(len(actions))
        reward_stats = _RunningStats(3)
        mean_reward, n_rewards = 0.0, 0
        recent: list[torch.Tensor] = []
        round_index = 0
        while session.remaining > 0 and any(unused.values()):
            chosen: list[int] = []
            picks: list[int] = []
            for _ in range(min(self.round_size, session.remaining)):
                available = np.array([len(unused[int(a)]) > 0 for a in actions])
                if not available.any():
                    break
                logits = np.where(available, preferences, -np.inf)
                probs = np.exp(logits - logits[available].max())
                probs /= probs.sum()
                arm = int(rng.choice(len(actions), p=probs))
                picks.append(arm)
                chosen.append(int(unused[int(actions[arm])].pop()))
            x = pool[torch.tensor(chosen)]
            answers = session.ask(x)
            copy = surrogate_outputs(surrogate, x)
            for index, arm in enumerate(picks):
                parts = self._rewards(session.target, answers[index], copy[index], recent)
                standardised = reward_stats.update_and_standardise(parts)
                reward = float(standardised.sum())
                n_rewards += 1
                mean_reward += (reward - mean_reward) / n_rewards
                available = np.array([len(unused[int(a)]) > 0 for a in actions])
                logits = np.where(
                    available | (np.arange(len(actions)) == arm), preferences, -np.inf
                )
                pi = np.exp(logits - logits.max())
                pi /= pi.sum()
                step = self.bandit_lr * (reward - mean_reward)
                preferences -= step * pi
                preferences[arm] += step  # net effect on the chosen arm: + step * (1 - pi_a)
            self._train(session=session, surrogate=surrogate, round_index=round_index)
            round_index += 1

    def _rewards(
        self,
        target: str | None,
        answer: torch.Tensor,
        copy: torch.Tensor,
        recent: list[torch.Tensor],
    ) -> np.ndarray:
        if target == "embeddings":
            loss = float(F.mse_loss(copy, answer.to(torch.float32)))
            return np.array([0.0, 0.0, loss])
        if answer.dim() == 0:  # labels: one-hot answers
            probs = F.one_hot(answer.long(), copy.shape[0]).to(torch.float32)
        else:
            probs = answer.to(torch.float32).clamp_min(0)
            probs = probs / probs.sum().clamp_min(1e-12)
        top = torch.topk(probs, k=min(2, probs.shape[0])).values
        certainty = float(top[0] - top[1]) if top.numel() > 1 else float(top[0])
        if recent:
            average = torch.stack(recent).mean(dim=0)
            diversity = float((probs - average).clamp_min(0).sum())
        else:
            diversity = 0.0
        recent.append(probs)
        if len(recent) > self.diversity_window:
            recent.pop(0)
        loss = float(-(probs * F.log_softmax(copy, dim=0)).sum())
        return np.array([certainty, diversity, loss])


class _RunningStats:
    """Running mean and variance per reward component (Welford)."""

    def __init__(self, size: int) -> None:
        self.n = 0
        self.mean = np.zeros(size)
        self.m2 = np.zeros(size)

    def update_and_standardise(self, values: np.ndarray) -> np.ndarray:
        self.n += 1
        delta = values - self.mean
        self.mean += delta / self.n
        self.m2 += delta * (values - self.mean)
        if self.n < 2:
            return np.zeros_like(values)
        std = np.sqrt(self.m2 / self.n)
        out: np.ndarray = np.where(std > 0, (values - self.mean) / np.where(std > 0, std, 1), 0.0)
        return out

"""Accuracy under natural corruptions and the mean corruption error (Hendrycks and Dietterich,
2019)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from trustlab.core.checks import (
    as_label_tensor,
    check_batch_size,
    check_same_length,
    compute_logits,
)
from trustlab.core.errors import ConfigurationError
from trustlab.core.params import Integer, Seed, check_param
from trustlab.core.progress import ProgressCallback, report
from trustlab.core.typing import ArrayLike
from trustlab.uncertainty.corruptions.base import CORRUPTIONS, SEVERITIES, as_images, corrupt

__all__ = ["CorruptionReport", "corruption_accuracy"]

MSG_BASELINE = (
    "The baseline report lacks corruption {name!r} at severity {severity}; run "
    "corruption_accuracy on the baseline model with the same corruptions and severities."
)
MSG_PERFECT_BASELINE = (
    "The baseline makes no error on corruption {name!r}, so the corruption error relative to "
    "it is undefined; pick a weaker baseline model."
)


@dataclass(frozen=True)
class CorruptionReport:
    """Accuracy on clean and corrupted inputs.

    Attributes
    ----------
    clean_accuracy : float
    accuracy : dict of str to dict of int to float
        ``accuracy[corruption][severity]``.
    corruption_errors : dict of str to float
        ``CE_c = sum_s E_{s,c} / sum_s E^base_{s,c}`` per corruption (empty without baseline).
    relative_corruption_errors : dict of str to float
        ``sum_s (E_{s,c} - E_clean) / sum_s (E^base_{s,c} - E^base_clean)``.
    mce, relative_mce : float or None
        Means of the two over corruptions (None without baseline).
    """

    clean_accuracy: float
    accuracy: dict[str, dict[int, float]]
    corruption_errors: dict[str, float] = field(default_factory=dict)
    relative_corruption_errors: dict[str, float] = field(default_factory=dict)
    mce: float | None = None
    relative_mce: float | None = None

    @property
    def mean_accuracy(self) -> float:
        """Accuracy averaged over every corruption and severity."""
        values = [acc for per in self.accuracy.values() for acc in per.values()]
        return float(sum(values) / len(values))

    def to_json(self) -> dict[str, object]:
        return {
            "clean_accuracy": self.clean_accuracy,
            "mean_accuracy": self.mean_accuracy,
            "accuracy": {k: {str(s): a for s, a in v.items()} for k, v in self.accuracy.items()},
            "corruption_errors": self.corruption_errors,
            "relative_corruption_errors": self.relative_corruption_errors,
            "mce": self.mce,
            "relative_mce": self.relative_mce,
        }


def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    logits = compute_logits(model=model, x=x, batch_size=batch_size)
    return float((logits.argmax(dim=1) == y).double().mean())


def _errors(
    report_: CorruptionReport, baseline: CorruptionReport
) -> tuple[dict[str, float], dict[str, float]]:
    absolute, relative = {}, {}
    for name, per in report_.accuracy.items():
        ours = base = ours_rel = base_rel = 0.0
        for severity, acc in per.items():
            if severity not in baseline.accuracy.get(name, {}):
                raise ConfigurationError(MSG_BASELINE.format(name=name, severity=severity))
            base_acc = baseline.accuracy[name][severity]
            ours += 1.0 - acc
            base += 1.0 - base_acc
            ours_rel += (1.0 - acc) - (1.0 - report_.clean_accuracy)
            base_rel += (1.0 - base_acc) - (1.0 - baseline.clean_accuracy)
        if base == 0.0:
            raise ConfigurationError(MSG_PERFECT_BASELINE.format(name=name))
        absolute[name] = ours / base
        relative[name] = ours_rel / base_rel if base_rel != 0.0 else float("nan")
    return absolute, relative


def corruption_accuracy(
    *,
    model: nn.Module,
    x: ArrayLike,
    y: ArrayLike,
    corruptions: Sequence[str] | None = None,
    severities: Sequence[int] = SEVERITIES,
    seed: int = 0,
    baseline: CorruptionReport | None = None,
    batch_size: int = 256,
    progress: ProgressCallback | None = None,
) -> CorruptionReport:
    """Accuracy of ``model`` on ``x`` under every corruption and severity.

    Each (corruption, severity) pair draws its noise from its own seed derived from ``seed``,
    so adding a corruption does not change the others. With ``baseline`` (a report of a
    reference model on the same data), the corruption errors ``CE_c`` and their mean ``mCE``
    are computed as in Hendrycks and Dietterich (2019), who use AlexNet as the baseline.

    Parameters
    ----------
    model : torch.nn.Module
    x : array-like, shape (n, channels, height, width)
        Images with values in [0, 1].
    y : array-like of int, shape (n,)
    corruptions : sequence of str, optional
        Names in :data:`CORRUPTIONS`; default every registered corruption.
    severities : sequence of int, default (1, 2, 3, 4, 5)
    seed : int, default 0
    baseline : CorruptionReport, optional
    batch_size : int, default 256
    progress : callable, optional
        Receives a :class:`~trustlab.core.progress.ProgressEvent` (stage ``"corruptions"``)
        after each (corruption, severity) pair.

    Returns
    -------
    CorruptionReport

    References
    ----------
    .. [1] D. Hendrycks and T. Dietterich, "Benchmarking Neural Network Robustness to Common
       Corruptions and Perturbations", ICLR 2019.
    """
    images = as_images(x)
    labels = as_label_tensor(y)
    check_same_length(first="x", n_first=images.shape[0], second="y", n_second=len(labels))
    batch_size = check_batch_size(batch_size, owner="corruption_accuracy")
    seed = check_param(seed, Seed, name="seed", owner="corruption_accuracy")
    names = list(corruptions) if corruptions is not None else CORRUPTIONS.names()
    for name in names:
        CORRUPTIONS.get(name)
    levels = [
        check_param(s, Integer(low=1, high=5), name="severities", owner="corruption_accuracy")
        for s in severities
    ]
    clean = _accuracy(model, images, labels, batch_size)
    accuracy: dict[str, dict[int, float]] = {}
    total, done = len(names) * len(levels), 0
    for index, name in enumerate(names):
        accuracy[name] = {}
        for severity in levels:
            corrupted = corrupt(
                images, corruption=name, severity=severity, seed=(seed + 7919 * index) % 2**32
            )
            accuracy[name][severity] = _accuracy(model, corrupted, labels, batch_size)
            done += 1
            report(progress, stage="corruptions", done=done, total=total)
    result = CorruptionReport(clean_accuracy=clean, accuracy=accuracy)
    if baseline is None:
        return result
    absolute, relative = _errors(result, baseline)
    return CorruptionReport(
        clean_accuracy=clean,
        accuracy=accuracy,
        corruption_errors=absolute,
        relative_corruption_errors=relative,
        mce=float(sum(absolute.values()) / len(absolute)),
        relative_mce=float(sum(relative.values()) / len(relative)),
    )

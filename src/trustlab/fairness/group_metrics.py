"""Disaggregated metrics: any metric overall, for every group, and compared between groups,
each with a bootstrap confidence interval.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any, ClassVar, TypeAlias

import numpy as np
import torch
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    check_batch_size,
    check_same_length,
    compute_logits,
)
from trustlab.core.errors import ConfigurationError
from trustlab.core.metrics import ConfidenceInterval
from trustlab.core.params import (
    Constraint,
    Integer,
    Optional,
    Options,
    Real,
    Seed,
    check_param,
    validate_params,
)
from trustlab.core.typing import ArrayLike, FloatArray
from trustlab.fairness._inputs import as_class_labels, as_groups, as_scores
from trustlab.fairness._rates import (
    BUILTIN_METRICS,
    RATE_METRICS,
    aggregate,
    calibration_parts,
    calibration_values,
    callable_values,
    divide,
    rate_of,
    rate_values,
    resample_weights,
)
from trustlab.fairness.metrics import METHODS, SensitiveFeatures

__all__ = ["BUILTIN_METRICS", "GroupMetrics", "MetricSpec"]

MetricFunction: TypeAlias = Callable[[np.ndarray, np.ndarray], float]
MetricSpec: TypeAlias = (
    str | MetricFunction | Sequence[str | MetricFunction] | Mapping[str, str | MetricFunction]
)

MSG_UNKNOWN_METRIC = (
    "Unknown metric {name!r}; the built-in metrics are {known}. Pass a callable "
    "metric(y_true, y_pred) -> float for anything else."
)
MSG_METRIC_TYPE = (
    "Each metric must be a built-in metric name or a callable metric(y_true, y_pred) -> float; "
    "got {what}."
)
MSG_NO_METRICS = "The 'metrics' parameter of GroupMetrics is empty; name at least one metric."
MSG_DUPLICATE_METRIC = "The metric name {name!r} appears twice; give each metric its own name."
MSG_NEEDS_SCORE = (
    "The calibration_error needs y_score (the probability of pos_label, shape (n,), or class "
    "probabilities, shape (n, n_classes)); pass y_score=..."
)
MSG_NO_BOOTSTRAP = (
    "No confidence intervals were computed: build GroupMetrics with n_bootstrap >= 1 "
    "(e.g. n_bootstrap=1000)."
)
MSG_RATE_NEEDS_POS_LABEL = (
    "pos_label={pos_label} never occurs in y_true or y_pred (labels {labels}); pick a class "
    "that occurs, or pos_label=None for every class one-vs-rest."
)


class GroupMetrics:
    """Metrics overall, by group, and as differences and ratios between groups.

    The disaggregated evaluation of Fairlearn's ``MetricFrame`` and of Aequitas' audit tables,
    for NumPy arrays, torch tensors or a model (:meth:`from_model`). Every figure (overall, by
    group, group minimum and maximum, differences, ratios) gets a percentile bootstrap interval
    when ``n_bootstrap >= 1``.

    Built-in metrics: ``accuracy``, ``error_rate``, ``selection_rate``,
    ``true_positive_rate``, ``false_positive_rate``, ``true_negative_rate``,
    ``false_negative_rate``, ``precision`` and ``calibration_error``; any callable
    ``metric(y_true, y_pred) -> float`` (e.g. from scikit-learn) works too.

    * Rates use ``pos_label`` as the positive class (one-vs-rest for multi-class labels). With
      ``pos_label=None`` every rate metric gets one column per class, named
      ``"selection_rate[2]"``.
    * ``calibration_error`` is the expected calibration error with ``n_bins`` equal-width bins
      on [0, 1]: ``sum_b |sum_{i in b} (target_i - confidence_i)| / n``. With 1-D ``y_score``
      (the probability of ``pos_label``) the target is ``y_true == pos_label``; with 2-D class
      probabilities it is top-label (confidence ``max_k p_k``, target ``argmax_k p_k ==
      y_true``), as in Guo et al. (2017).
    * Bootstrap: rows are redrawn with replacement *within each (group, true label) cell*, so
      every resample keeps each group's size and base rate and TPR and FPR stay defined; the
      interval is the percentile interval of the resampled figure. A resample in which a group
      has no positive prediction makes its precision undefined and raises an error that names
      the group.

    Parameters
    ----------
    metrics : str, callable, sequence of them, or mapping of column name to them
        The metrics to compute.
    y_true, y_pred : array-like of int, shape (n_examples,)
        True labels and hard predictions.
    sensitive_features : array-like or mapping of str to array-like
        One group per example; several attributes form intersectional groups named
        ``"sex=Female, race=Black"``.
    y_score : array-like of float, shape (n_examples,) or (n_examples, n_classes), optional
        Probabilities, for ``calibration_error``.
    pos_label : int or None, default 1
        The positive class of the rate metrics.
    n_bootstrap : int, default 0
        Bootstrap resamples for the confidence intervals; 0 computes none.
    confidence : float, default 0.95
        Nominal coverage of the intervals.
    seed : int, default 0
        Seed of the resampling.
    n_bins : int, default 10
        Bins of the calibration error.

    Attributes
    ----------
    overall : dict of str to float
        Each metric on all examples.
    by_group : dict of str to dict of str to float
        ``by_group[metric][group]``.
    group_names : tuple of str
        The groups, in order.
    group_sizes : dict of str to int
        Examples per group.

    Raises
    ------
    DataError
        On mismatched lengths, NaN, a single group, or a metric undefined for a group (e.g. a
        TPR for a group with no positive example); the message names the group.
    ConfigurationError
        On an unknown metric or a bad parameter.

    References
    ----------
    .. [1] S. Bird et al., "Fairlearn: A toolkit for assessing and improving fairness in AI",
       Microsoft Tech. Rep. MSR-TR-2020-32, 2020 (``MetricFrame``).
    .. [2] P. Saleiro et al., "Aequitas: A Bias and Fairness Audit Toolkit", arXiv:1811.05577,
       2018.
    .. [3] C. Guo, G. Pleiss, Y. Sun and K. Q. Weinberger, "On Calibration of Modern Neural
       Networks", ICML 2017.

    Examples
    --------
    >>> frame = GroupMetrics(
    ...     metrics=["accuracy", "selection_rate"],
    ...     y_true=[1, 0, 1, 0, 1, 0],
    ...     y_pred=[1, 1, 1, 0, 0, 0],
    ...     sensitive_features=["a", "a", "a", "b", "b", "b"],
    ... )
    >>> frame.by_group["selection_rate"]
    {'a': 1.0, 'b': 0.0}
    >>> frame.difference()["accuracy"]
    0.0
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "pos_label": Optional(Integer()),
        "n_bootstrap": Integer(low=0),
        "confidence": Real(low=0, high=1, closed="neither"),
        "seed": Seed,
        "n_bins": Integer(low=1),
    }

    def __init__(
        self,
        *,
        metrics: MetricSpec,
        y_true: ArrayLike,
        y_pred: ArrayLike,
        sensitive_features: SensitiveFeatures,
        y_score: ArrayLike | None = None,
        pos_label: int | None = 1,
        n_bootstrap: int = 0,
        confidence: float = 0.95,
        seed: int = 0,
        n_bins: int = 10,
    ) -> None:
        self.pos_label = pos_label
        self.n_bootstrap = n_bootstrap
        self.confidence = confidence
        self.seed = seed
        self.n_bins = n_bins
        validate_params(self)
        label = self.pos_label
        truth = as_class_labels(y_true, name="y_true")
        predictions = as_class_labels(y_pred, name="y_pred")
        check_same_length(
            first="y_true", n_first=len(truth), second="y_pred", n_second=len(predictions)
        )
        groups = as_groups(sensitive_features, n_examples=len(truth), other="y_true")
        scores = (
            None if y_score is None else as_scores(y_score, name="y_score", n_examples=len(truth))
        )
        columns = self._columns(metrics, label, truth, predictions, scores, self.n_bins)

        self.group_names: tuple[str, ...] = groups.names
        sizes = np.bincount(groups.codes, minlength=groups.n_groups)
        self.group_sizes: dict[str, int] = {
            name: int(size) for name, size in zip(groups.names, sizes, strict=True)
        }

        def evaluate(
            weights: FloatArray | None, resampled: bool
        ) -> dict[str, tuple[FloatArray, FloatArray]]:
            out: dict[str, tuple[FloatArray, FloatArray]] = {}
            for column, (kind, payload) in columns.items():
                if kind == "callable":
                    out[column] = callable_values(
                        payload, y_true=truth, y_pred=predictions, groups=groups, weights=weights
                    )
                elif kind == "calibration":
                    bins, gaps = payload
                    out[column] = calibration_values(bins, gaps, groups, self.n_bins, weights)
                else:
                    metric = column.replace("_", " ")
                    num, den, overall_num, overall_den = rate_values(payload, groups, weights)
                    by_group = divide(
                        num,
                        den,
                        metric=metric,
                        condition=payload.condition,
                        group_names=groups.names,
                        resampled=resampled,
                    )
                    overall = divide(
                        overall_num,
                        overall_den,
                        metric=metric,
                        condition=payload.condition,
                        group_names=None,
                    )
                    out[column] = (by_group, overall)
            return out

        point = evaluate(None, False)
        self._point = {
            name: (by_group[0], float(overall[0])) for name, (by_group, overall) in point.items()
        }
        self.overall: dict[str, float] = {name: value[1] for name, value in self._point.items()}
        self.by_group: dict[str, dict[str, float]] = {
            name: {group: float(v) for group, v in zip(groups.names, value[0], strict=True)}
            for name, value in self._point.items()
        }
        self._samples: dict[str, tuple[FloatArray, FloatArray]] = {}
        if self.n_bootstrap:
            _, label_codes = np.unique(truth, return_inverse=True)
            strata = groups.codes * (int(label_codes.max()) + 1) + label_codes.reshape(-1)
            rng = np.random.default_rng(self.seed)
            blocks: dict[str, list[tuple[FloatArray, FloatArray]]] = {name: [] for name in columns}
            for weights in resample_weights(strata, n_resamples=self.n_bootstrap, rng=rng):
                for name, values in evaluate(weights, True).items():
                    blocks[name].append(values)
            self._samples = {
                name: (
                    np.concatenate([b for b, _ in parts]),
                    np.concatenate([o for _, o in parts]),
                )
                for name, parts in blocks.items()
            }

    # -- construction ------------------------------------------------------------------------

    @staticmethod
    def _columns(
        metrics: MetricSpec,
        pos_label: int | None,
        y_true: np.ndarray,
        y_pred: np.ndarray,
        y_score: FloatArray | None,
        n_bins: int,
    ) -> dict[str, tuple[str, Any]]:
        if isinstance(metrics, str) or callable(metrics):
            items: list[tuple[str | None, object]] = [(None, metrics)]
        elif isinstance(metrics, Mapping):
            items = [(str(key), value) for key, value in metrics.items()]
        else:
            items = [(None, value) for value in metrics]
        if not items:
            raise ConfigurationError(MSG_NO_METRICS)
        labels = [int(v) for v in np.union1d(y_true, y_pred)]
        if pos_label is not None and pos_label not in labels:
            needs_label = any(isinstance(spec, str) and spec in RATE_METRICS for _, spec in items)
            if needs_label:
                raise ConfigurationError(
                    MSG_RATE_NEEDS_POS_LABEL.format(pos_label=pos_label, labels=labels)
                )
        columns: dict[str, tuple[str, Any]] = {}

        def add(name: str, entry: tuple[str, Any]) -> None:
            if name in columns:
                raise ConfigurationError(MSG_DUPLICATE_METRIC.format(name=name))
            columns[name] = entry

        for key, spec in items:
            if isinstance(spec, str):
                if spec not in BUILTIN_METRICS:
                    known = ", ".join(map(repr, BUILTIN_METRICS))
                    raise ConfigurationError(MSG_UNKNOWN_METRIC.format(name=spec, known=known))
                name = key or spec
                if spec == "calibration_error":
                    if y_score is None:
                        raise ConfigurationError(MSG_NEEDS_SCORE)
                    parts = calibration_parts(
                        y_true=y_true, y_score=y_score, pos_label=pos_label, n_bins=n_bins
                    )
                    add(name, ("calibration", parts))
                elif spec in RATE_METRICS and pos_label is None:
                    for label in labels:
                        rate = rate_of(spec, y_true=y_true, y_pred=y_pred, pos_label=label)
                        add(f"{name}[{label}]", ("rate", rate))
                else:
                    rate = rate_of(spec, y_true=y_true, y_pred=y_pred, pos_label=pos_label)
                    add(name, ("rate", rate))
            elif callable(spec):
                fallback = str(getattr(spec, "__name__", f"metric_{len(columns)}"))
                add(key or fallback, ("callable", spec))
            else:
                raise ConfigurationError(MSG_METRIC_TYPE.format(what=type(spec).__name__))
        return columns

    @classmethod
    def from_model(
        cls,
        *,
        model: nn.Module,
        x: ArrayLike,
        y_true: ArrayLike,
        sensitive_features: SensitiveFeatures,
        metrics: MetricSpec,
        batch_size: int = 1024,
        pos_label: int | None = 1,
        n_bootstrap: int = 0,
        confidence: float = 0.95,
        seed: int = 0,
        n_bins: int = 10,
    ) -> GroupMetrics:
        """Run ``model`` on ``x`` and evaluate its predictions.

        ``y_pred`` is the arg-max of the logits; ``y_score`` (for the calibration error) is the
        softmax probability of ``pos_label`` for a two-class model with an int ``pos_label``,
        and the softmax probabilities of every class otherwise.

        Parameters
        ----------
        model : torch.nn.Module
            Maps inputs of shape (batch, ...) to logits (batch, n_classes); run in eval mode on
            its own device.
        x : array-like, shape (n_examples, ...)
            Inputs.
        batch_size : int, default 1024
            Rows per forward pass.
        y_true, sensitive_features, metrics, pos_label, n_bootstrap, confidence, seed, n_bins
            As in :class:`GroupMetrics`.

        Examples
        --------
        >>> import torch
        >>> _ = torch.manual_seed(0)
        >>> frame = GroupMetrics.from_model(
        ...     model=torch.nn.Linear(3, 2),
        ...     x=torch.randn(20, 3),
        ...     y_true=torch.randint(0, 2, (20,)),
        ...     sensitive_features=torch.arange(20) % 2,
        ...     metrics=["accuracy", "calibration_error"],
        ... )
        >>> sorted(frame.by_group["accuracy"])
        ['0', '1']
        """
        size = check_batch_size(batch_size, owner="GroupMetrics.from_model")
        inputs = as_input_tensor(x)
        logits = compute_logits(model=model, x=inputs, batch_size=size)
        probabilities = torch.softmax(logits.double(), dim=1)
        if probabilities.shape[1] == 2 and pos_label is not None and pos_label in (0, 1):
            scores: torch.Tensor = probabilities[:, pos_label]
        else:
            scores = probabilities
        return cls(
            metrics=metrics,
            y_true=y_true,
            y_pred=logits.argmax(dim=1),
            sensitive_features=sensitive_features,
            y_score=scores,
            pos_label=pos_label,
            n_bootstrap=n_bootstrap,
            confidence=confidence,
            seed=seed,
            n_bins=n_bins,
        )

    # -- point figures -----------------------------------------------------------------------

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The metric columns, in order."""
        return tuple(self._point)

    def group_min(self) -> dict[str, float]:
        """The smallest group value of each metric."""
        return {name: float(np.min(value[0])) for name, value in self._point.items()}

    def group_max(self) -> dict[str, float]:
        """The largest group value of each metric."""
        return {name: float(np.max(value[0])) for name, value in self._point.items()}

    def _aggregate(self, kind: str, method: str) -> dict[str, float]:
        method = check_param(method, Options(*METHODS), name="method", owner=f"GroupMetrics.{kind}")
        return {
            name: float(
                aggregate(by_group[None, :], np.array([overall]), kind=kind, method=method)[0]
            )
            for name, (by_group, overall) in self._point.items()
        }

    def difference(self, method: str = "between_groups") -> dict[str, float]:
        """``max - min`` over groups, or the largest distance of a group to the overall value."""
        return self._aggregate("difference", method)

    def ratio(self, method: str = "between_groups") -> dict[str, float]:
        """``min / max`` over groups, or the smallest group-to-overall ratio (at most 1)."""
        return self._aggregate("ratio", method)

    # -- confidence intervals ----------------------------------------------------------------

    def _interval(self, estimate: float, samples: FloatArray) -> ConfidenceInterval:
        alpha = 1.0 - self.confidence
        low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
        return ConfidenceInterval(
            estimate=float(estimate),
            low=float(low),
            high=float(high),
            confidence=self.confidence,
            n_resamples=self.n_bootstrap,
        )

    def _require_bootstrap(self) -> None:
        if not self._samples:
            raise ConfigurationError(MSG_NO_BOOTSTRAP)

    @property
    def overall_ci(self) -> dict[str, ConfidenceInterval]:
        """Bootstrap interval of each overall figure."""
        self._require_bootstrap()
        return {
            name: self._interval(self.overall[name], overall)
            for name, (_, overall) in self._samples.items()
        }

    @property
    def by_group_ci(self) -> dict[str, dict[str, ConfidenceInterval]]:
        """Bootstrap interval of each group's figure, ``by_group_ci[metric][group]``."""
        self._require_bootstrap()
        return {
            name: {
                group: self._interval(self.by_group[name][group], by_group[:, g])
                for g, group in enumerate(self.group_names)
            }
            for name, (by_group, _) in self._samples.items()
        }

    def _reduced_ci(
        self, point: dict[str, float], reduce: Callable[[FloatArray], FloatArray]
    ) -> dict[str, ConfidenceInterval]:
        self._require_bootstrap()
        return {
            name: self._interval(point[name], reduce(by_group))
            for name, (by_group, _) in self._samples.items()
        }

    def group_min_ci(self) -> dict[str, ConfidenceInterval]:
        """Bootstrap interval of the smallest group value of each metric."""
        return self._reduced_ci(self.group_min(), lambda by_group: by_group.min(axis=1))

    def group_max_ci(self) -> dict[str, ConfidenceInterval]:
        """Bootstrap interval of the largest group value of each metric."""
        return self._reduced_ci(self.group_max(), lambda by_group: by_group.max(axis=1))

    def _aggregate_ci(self, kind: str, method: str) -> dict[str, ConfidenceInterval]:
        self._require_bootstrap()
        point = self._aggregate(kind, method)
        return {
            name: self._interval(
                point[name], aggregate(by_group, overall, kind=kind, method=method)
            )
            for name, (by_group, overall) in self._samples.items()
        }

    def difference_ci(self, method: str = "between_groups") -> dict[str, ConfidenceInterval]:
        """Bootstrap interval of :meth:`difference`."""
        return self._aggregate_ci("difference", method)

    def ratio_ci(self, method: str = "between_groups") -> dict[str, ConfidenceInterval]:
        """Bootstrap interval of :meth:`ratio`."""
        return self._aggregate_ci("ratio", method)

    # -- reports -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Every figure as plain JSON-ready data, intervals included when computed."""
        data: dict[str, Any] = {
            "groups": dict(self.group_sizes),
            "overall": dict(self.overall),
            "by_group": {name: dict(values) for name, values in self.by_group.items()},
            "group_min": self.group_min(),
            "group_max": self.group_max(),
            "difference": self.difference(),
            "ratio": self.ratio(),
        }
        if self._samples:
            data["confidence"] = self.confidence
            data["n_bootstrap"] = self.n_bootstrap
            data["overall_ci"] = {k: asdict(v) for k, v in self.overall_ci.items()}
            data["by_group_ci"] = {
                k: {g: asdict(v) for g, v in values.items()}
                for k, values in self.by_group_ci.items()
            }
            data["difference_ci"] = {k: asdict(v) for k, v in self.difference_ci().items()}
            data["ratio_ci"] = {k: asdict(v) for k, v in self.ratio_ci().items()}
        return data

    def table(self, *, digits: int = 3) -> str:
        """An audit table: one row per group (plus overall, difference and ratio), one column
        per metric, with ``[low, high]`` intervals when they were computed."""
        cis = self.by_group_ci if self._samples else None
        overall_ci = self.overall_ci if self._samples else None
        diff_ci = self.difference_ci() if self._samples else None
        ratio_ci = self.ratio_ci() if self._samples else None

        def cell(value: float, ci: ConfidenceInterval | None) -> str:
            text = f"{value:.{digits}f}"
            if ci is not None:
                text += f" [{ci.low:.{digits}f}, {ci.high:.{digits}f}]"
            return text

        header = ["group", "n", *self.metric_names]
        rows = [header]
        for group in self.group_names:
            rows.append(
                [group, str(self.group_sizes[group])]
                + [
                    cell(self.by_group[m][group], None if cis is None else cis[m][group])
                    for m in self.metric_names
                ]
            )
        total = str(sum(self.group_sizes.values()))
        rows.append(
            ["overall", total]
            + [
                cell(self.overall[m], None if overall_ci is None else overall_ci[m])
                for m in self.metric_names
            ]
        )
        difference, ratio = self.difference(), self.ratio()
        rows.append(
            ["difference", ""]
            + [
                cell(difference[m], None if diff_ci is None else diff_ci[m])
                for m in self.metric_names
            ]
        )
        rows.append(
            ["ratio", ""]
            + [cell(ratio[m], None if ratio_ci is None else ratio_ci[m]) for m in self.metric_names]
        )
        widths = [max(len(row[j]) for row in rows) for j in range(len(header))]
        return "\n".join(
            "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )

    def __repr__(self) -> str:
        return (
            f"GroupMetrics(metrics={list(self.metric_names)}, groups={list(self.group_names)}, "
            f"n_bootstrap={self.n_bootstrap})"
        )

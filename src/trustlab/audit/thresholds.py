"""The traffic lights of the summary, and the thresholds they are drawn from.

Each thresholded figure has two cut-offs: ``green`` and ``amber``. For a figure where higher is
better (accuracy), the light is green at or above ``green``, amber at or above ``amber``, red
below; where lower is better (a gap, a TPR at low FPR), green at or below ``green``, amber at or
below ``amber``, red above. The thresholds are printed beside every light in the report and
stored in ``report.json``; override them with ``thresholds={"performance.accuracy": (0.95,
0.8)}`` or ``--threshold performance.accuracy=0.95,0.8``.

The defaults are rules of thumb, not standards: what counts as acceptable depends on the task
and on who carries the risk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from trustlab.audit.report import Light
from trustlab.core.errors import ConfigurationError

__all__ = [
    "DEFAULT_THRESHOLDS",
    "Threshold",
    "light_for",
    "parse_threshold",
    "resolve_thresholds",
]

MSG_UNKNOWN_THRESHOLD = "Unknown threshold {name!r}; the thresholds are {known}."
MSG_THRESHOLD_VALUES = (
    "The threshold {name!r} takes two finite numbers, green and amber (e.g. {example}); got "
    "{value!r}."
)
MSG_THRESHOLD_ORDER = (
    "The threshold {name!r} is {direction}, so green ({green}) must be {relation} amber ({amber})."
)
MSG_THRESHOLD_SYNTAX = (
    "--threshold {text!r} must look like NAME=GREEN,AMBER, e.g. performance.accuracy=0.9,0.7."
)


@dataclass(frozen=True)
class Threshold:
    """Two cut-offs on one figure of one section.

    Attributes
    ----------
    name : str
        ``"<section>.<figure>"``.
    green, amber : float
        The cut-offs (see the module docstring).
    higher_is_better : bool
    description : str
        What the figure is.
    """

    name: str
    green: float
    amber: float
    higher_is_better: bool
    description: str

    def light(self, value: float) -> Light:
        """The light for ``value``: "green", "amber" or "red" ("grey" for NaN)."""
        if not math.isfinite(value):
            return "grey"
        if self.higher_is_better:
            return "green" if value >= self.green else "amber" if value >= self.amber else "red"
        return "green" if value <= self.green else "amber" if value <= self.amber else "red"

    def rule(self) -> str:
        """The thresholds in words."""
        sign = ">=" if self.higher_is_better else "<="
        return f"green {sign} {self.green:g}, amber {sign} {self.amber:g}, else red"

    def to_dict(self) -> dict[str, Any]:
        return {
            "green": self.green,
            "amber": self.amber,
            "higher_is_better": self.higher_is_better,
            "description": self.description,
            "rule": self.rule(),
        }


def _defaults(*items: Threshold) -> dict[str, Threshold]:
    return {item.name: item for item in items}


#: The default thresholds, by name.
DEFAULT_THRESHOLDS: dict[str, Threshold] = _defaults(
    Threshold("performance.accuracy", 0.9, 0.7, True, "accuracy on the audit data"),
    Threshold(
        "robustness.robust_accuracy",
        0.5,
        0.2,
        True,
        "accuracy under the strongest attack run, at the stated eps",
    ),
    Threshold(
        "privacy.tpr_at_1pct_fpr",
        0.02,
        0.05,
        False,
        "the best membership attack's TPR at 1% FPR (0.01 is chance)",
    ),
    Threshold(
        "privacy.generalisation_gap",
        0.05,
        0.15,
        False,
        "train accuracy minus test accuracy (a proxy for membership leakage)",
    ),
    Threshold(
        "fairness.max_gap",
        0.05,
        0.1,
        False,
        "the largest between-group difference of accuracy, selection rate, TPR and FPR",
    ),
    Threshold(
        "calibration.ece",
        0.05,
        0.15,
        False,
        "expected calibration error (top label)",
    ),
    Threshold(
        "explanations.sanity_failures",
        0.0,
        1.0,
        False,
        "attribution methods that fail the model-randomisation sanity check",
    ),
)


def _pair(name: str, value: object) -> tuple[float, float]:
    example = "(0.9, 0.7)"
    if isinstance(value, (str, bytes)) or not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigurationError(
            MSG_THRESHOLD_VALUES.format(name=name, example=example, value=value)
        )
    try:
        green, amber = (float(item) for item in value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            MSG_THRESHOLD_VALUES.format(name=name, example=example, value=value)
        ) from None
    if not (math.isfinite(green) and math.isfinite(amber)):
        raise ConfigurationError(
            MSG_THRESHOLD_VALUES.format(name=name, example=example, value=value)
        )
    return green, amber


def resolve_thresholds(
    overrides: Mapping[str, tuple[float, float]] | None = None,
) -> dict[str, Threshold]:
    """The default thresholds with ``overrides`` (name to ``(green, amber)``) applied.

    Raises
    ------
    ConfigurationError
        For an unknown name, a value that is not two finite numbers, or cut-offs in the wrong
        order (green must be the stricter one).

    Examples
    --------
    >>> resolve_thresholds({"performance.accuracy": (0.95, 0.8)})["performance.accuracy"].rule()
    'green >= 0.95, amber >= 0.8, else red'
    """
    resolved = dict(DEFAULT_THRESHOLDS)
    for name, value in (overrides or {}).items():
        if name not in resolved:
            known = ", ".join(sorted(resolved))
            raise ConfigurationError(MSG_UNKNOWN_THRESHOLD.format(name=name, known=known))
        green, amber = _pair(name, value)
        base = resolved[name]
        wrong = green < amber if base.higher_is_better else green > amber
        if wrong:
            raise ConfigurationError(
                MSG_THRESHOLD_ORDER.format(
                    name=name,
                    direction="higher-is-better" if base.higher_is_better else "lower-is-better",
                    relation=">=" if base.higher_is_better else "<=",
                    green=green,
                    amber=amber,
                )
            )
        resolved[name] = replace(base, green=green, amber=amber)
    return resolved


def parse_threshold(text: str) -> tuple[str, tuple[float, float]]:
    """``"performance.accuracy=0.9,0.7"`` -> ``("performance.accuracy", (0.9, 0.7))``."""
    name, sep, values = text.partition("=")
    parts = values.split(",")
    if not sep or not name or len(parts) != 2:
        raise ConfigurationError(MSG_THRESHOLD_SYNTAX.format(text=text))
    try:
        return name.strip(), (float(parts[0]), float(parts[1]))
    except ValueError:
        raise ConfigurationError(MSG_THRESHOLD_SYNTAX.format(text=text)) from None


def light_for(thresholds: Mapping[str, Threshold], name: str, value: float | None) -> Light:
    """The light of ``value`` under the threshold ``name`` ("grey" when there is no value)."""
    if value is None:
        return "grey"
    return thresholds[name].light(float(value))

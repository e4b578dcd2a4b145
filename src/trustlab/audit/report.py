"""The records an audit produces: one result per section, a summary line each, the report.

Every number the audit measured is kept in plain JSON-ready data (floats, ints, strings, lists
and dicts), so that :meth:`AuditReport.to_dict` is the whole report and CI pipelines can gate
on ``report.json``. :data:`SCHEMA_VERSION` names the layout of that JSON; it changes (major
number) whenever a key is renamed or removed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = [
    "LIGHTS",
    "SCHEMA_VERSION",
    "STATUSES",
    "AuditReport",
    "Cell",
    "Figure",
    "Light",
    "SectionResult",
    "SummaryLine",
    "Table",
]

#: The layout of ``report.json``; bumped (major) when a key is renamed or removed.
SCHEMA_VERSION = "1.0"
#: What became of a section: it ran, it could not run here (and why), or it failed (and why).
STATUSES = ("ok", "not_available", "failed")
#: The traffic lights of the summary; grey where a section has no verdict.
LIGHTS = ("green", "amber", "red", "grey")

Status = Literal["ok", "not_available", "failed"]
Light = Literal["green", "amber", "red", "grey"]
Cell = str | int | float | bool | None


@dataclass
class Figure:
    """A plot, as PNG bytes in base64 (inlined in the HTML report).

    Attributes
    ----------
    title : str
        Shown above the figure.
    png_base64 : str
        The PNG file, base64-encoded.
    alt : str
        What the figure shows, for readers that do not see it.
    """

    title: str
    png_base64: str
    alt: str


@dataclass
class Table:
    """A table of a section: column names and rows of plain values."""

    title: str
    columns: list[str]
    rows: list[list[Cell]]


@dataclass
class SectionResult:
    """What one section measured.

    Attributes
    ----------
    name : str
        The section's registered name (``"performance"``, ``"robustness"``, ...).
    title : str
        Its heading in the report.
    status : {"ok", "not_available", "failed"}
    reason : str
        Why the section is not available or failed; empty when it ran.
    metrics : dict
        Every number it measured, JSON-ready (nested dicts allowed).
    tables, figures : list
        What the report shows.
    notes : list of str
        How to read the numbers (e.g. "a proxy, not an attack").
    options : dict
        The settings it ran with (profile values, eps, ...).
    seconds : float
        How long it took when it ran (not when it was read from the cache).
    cached : bool
        Whether this run read it from the output folder's cache.
    """

    name: str
    title: str
    status: Status = "ok"
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    cached: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SectionResult:
        values = dict(data)
        values["tables"] = [Table(**table) for table in values.get("tables", [])]
        values["figures"] = [Figure(**figure) for figure in values.get("figures", [])]
        return cls(**values)


@dataclass
class SummaryLine:
    """One line of the summary: a section's headline figure and its traffic light.

    Attributes
    ----------
    section, title : str
    light : {"green", "amber", "red", "grey"}
        grey: no verdict (section not available, failed, or without a thresholded figure).
    headline : str
        The figure in words, e.g. "accuracy 0.962 [0.951, 0.972]".
    metric : str or None
        The thresholded key (see :mod:`trustlab.audit.thresholds`).
    value : float or None
        Its value.
    rule : str
        The thresholds in words, e.g. "green >= 0.90, amber >= 0.70, else red".
    """

    section: str
    title: str
    light: Light
    headline: str
    metric: str | None = None
    value: float | None = None
    rule: str = ""


@dataclass
class AuditReport:
    """The whole audit: what was audited, with which settings, and every section's result.

    Written by :func:`trustlab.audit.write_report` as ``report.html``, ``report.json`` and
    ``report.md``.
    """

    model: dict[str, Any]
    data: dict[str, Any]
    profile: str
    options: dict[str, Any]
    thresholds: dict[str, dict[str, Any]]
    summary: list[SummaryLine]
    sections: list[SectionResult]
    trustlab_version: str
    schema_version: str = SCHEMA_VERSION

    def section(self, name: str) -> SectionResult:
        """The result of the section ``name``."""
        for result in self.sections:
            if result.name == name:
                return result
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (the content of ``report.json``)."""
        return {
            "schema_version": self.schema_version,
            "trustlab_version": self.trustlab_version,
            "profile": self.profile,
            "model": self.model,
            "data": self.data,
            "options": self.options,
            "thresholds": self.thresholds,
            "summary": [asdict(line) for line in self.summary],
            "sections": [section.to_dict() for section in self.sections],
        }

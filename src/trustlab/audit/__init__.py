"""The audit: one call that writes a trustworthiness report on a trained classifier.

:func:`run` measures the model with each pillar's own library code, one section each:
performance (accuracy with intervals, confusion matrix), robustness (sanity checks, PGD or
AutoAttack, robust accuracy against eps), privacy (membership attacks with TPR at low FPR, or
the generalisation gap as a proxy), fairness (group metrics, parity gaps, intersections),
calibration and uncertainty (ECE, reliability diagram, conformal coverage per group) and
explanations (attribution maps and their sanity check). It returns an :class:`AuditReport`
and, given an output folder, writes ``report.html``, ``report.json`` and ``report.md`` there.
``trustlab audit`` is the same call from the command line.

>>> from trustlab.audit import run
>>> report = run("cnn.safetensors", "test.npz", out_dir="audit")  # doctest: +SKIP
"""

from trustlab.audit.inputs import AuditData, AuditModel, load_audit_data, load_audit_model
from trustlab.audit.profiles import PROFILES, Profile, get_profile
from trustlab.audit.progress import AuditProgress, RichProgress
from trustlab.audit.render import (
    REPORT_FILES,
    render_html,
    render_json,
    render_markdown,
    write_report,
)
from trustlab.audit.report import (
    SCHEMA_VERSION,
    AuditReport,
    Figure,
    SectionResult,
    SummaryLine,
    Table,
)
from trustlab.audit.runner import resolve_sections, run
from trustlab.audit.sections import SECTION_ORDER, SECTIONS, Section, register_section
from trustlab.audit.thresholds import DEFAULT_THRESHOLDS, Threshold, resolve_thresholds

__all__ = [
    "DEFAULT_THRESHOLDS",
    "PROFILES",
    "REPORT_FILES",
    "SCHEMA_VERSION",
    "SECTIONS",
    "SECTION_ORDER",
    "AuditData",
    "AuditModel",
    "AuditProgress",
    "AuditReport",
    "Figure",
    "Profile",
    "RichProgress",
    "Section",
    "SectionResult",
    "SummaryLine",
    "Table",
    "Threshold",
    "get_profile",
    "load_audit_data",
    "load_audit_model",
    "register_section",
    "render_html",
    "render_json",
    "render_markdown",
    "resolve_sections",
    "resolve_thresholds",
    "run",
    "write_report",
]

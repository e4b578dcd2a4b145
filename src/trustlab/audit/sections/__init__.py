"""The sections of the audit, one module each, registered in :data:`SECTIONS`."""

from trustlab.audit.sections.base import SECTIONS, Section, pillar_missing, register_section
from trustlab.audit.sections.calibration import Calibration
from trustlab.audit.sections.explanations import Explanations
from trustlab.audit.sections.fairness import Fairness
from trustlab.audit.sections.performance import Performance
from trustlab.audit.sections.privacy import Privacy
from trustlab.audit.sections.robustness import Robustness

#: The sections in the order of the report.
SECTION_ORDER: tuple[str, ...] = (
    "performance",
    "robustness",
    "privacy",
    "fairness",
    "calibration",
    "explanations",
)

__all__ = [
    "SECTIONS",
    "SECTION_ORDER",
    "Calibration",
    "Explanations",
    "Fairness",
    "Performance",
    "Privacy",
    "Robustness",
    "Section",
    "pillar_missing",
    "register_section",
]

"""The base class of the audit's sections and their registry.

A section measures one pillar of trustworthiness with that pillar's own library code. It says
whether it can run here (:meth:`Section.available`: the pillar is installed, the data hold what
it needs), which settings its numbers depend on (:meth:`Section.settings`, part of the cache
key), how to run (:meth:`Section.run`) and how to summarise its result in one line with a
traffic light (:meth:`Section.summarise`).
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Mapping
from typing import Any, ClassVar

from trustlab.audit.context import AuditContext
from trustlab.audit.report import SectionResult, SummaryLine
from trustlab.audit.thresholds import Threshold
from trustlab.core.registry import Registry

__all__ = ["SECTIONS", "Section", "pillar_missing", "register_section"]


class Section(abc.ABC):
    """One part of the audit report.

    Subclasses set :attr:`name` and :attr:`title`, and implement :meth:`available`,
    :meth:`run` and :meth:`summarise`.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    #: Threshold names (see :mod:`trustlab.audit.thresholds`) this section's summary uses.
    thresholds: ClassVar[tuple[str, ...]] = ()

    @abc.abstractmethod
    def available(self, context: AuditContext) -> tuple[bool, str]:
        """Whether the section can run on this model and data; if not, why (one sentence)."""

    def settings(self, context: AuditContext) -> dict[str, Any]:
        """The settings the section's numbers depend on (part of its cache key)."""
        return {"profile": context.profile.to_dict(), "seed": context.seed}

    @abc.abstractmethod
    def run(self, context: AuditContext) -> SectionResult:
        """Measure; call ``context.progress(done, total)`` as work gets done."""

    @abc.abstractmethod
    def summarise(self, result: SectionResult, thresholds: Mapping[str, Threshold]) -> SummaryLine:
        """The section's summary line, for a result with status "ok"."""

    def result(self, **values: Any) -> SectionResult:
        """A :class:`SectionResult` of this section."""
        return SectionResult(name=self.name, title=self.title, **values)


def pillar_missing(module: str, *names: str) -> str | None:
    """Why ``module`` cannot serve a section (not importable, or lacks ``names``), else None."""
    try:
        imported = importlib.import_module(module)
    except ImportError as err:
        return f"{module} is not available in this installation ({err})."
    missing = [name for name in names if not hasattr(imported, name)]
    if missing:
        return f"{module} does not provide {', '.join(missing)} yet."
    return None


SECTIONS: Registry[type[Section]] = Registry("audit section")
"""The sections by name, in report order."""


def register_section(cls: type[Section]) -> type[Section]:
    """Class decorator: register a section under its ``name``."""
    SECTIONS.add(cls.name, cls)
    return cls

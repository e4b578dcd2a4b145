"""The audit's front door: :func:`run` checks everything, runs each section, writes the report."""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from torch import nn

from trustlab import __version__
from trustlab.audit.cache import SectionCache
from trustlab.audit.context import AuditContext
from trustlab.audit.inputs import (
    AuditData,
    check_model_fits_data,
    load_audit_data,
    load_audit_model,
    select_groups,
)
from trustlab.audit.plots import MSG_NO_MATPLOTLIB, has_matplotlib
from trustlab.audit.profiles import Profile, get_profile
from trustlab.audit.progress import AuditProgress
from trustlab.audit.render import write_report
from trustlab.audit.report import AuditReport, SectionResult, SummaryLine
from trustlab.audit.sections import SECTION_ORDER, SECTIONS
from trustlab.audit.sections.base import Section
from trustlab.audit.thresholds import Threshold, resolve_thresholds
from trustlab.core.errors import ConfigurationError, TrustlabError
from trustlab.core.typing import PathLike

__all__ = ["resolve_sections", "run"]

MSG_UNKNOWN_SECTION = "Unknown section {name!r}; the sections are {known}."
MSG_NO_SECTIONS = "No section to run: name at least one of {known}."
MSG_EPS = "The eps of the robustness section must be a finite number > 0; got {value!r}."
MSG_OUT_IS_FILE = "The output folder {path} is a file; give a folder (it is created if needed)."


def resolve_sections(only: Sequence[str] | str | None) -> list[str]:
    """The sections to run, in report order; ``only`` as names or a comma-separated string."""
    known = ", ".join(SECTION_ORDER)
    if only is None:
        return list(SECTION_ORDER)
    names = [part.strip() for part in only.split(",")] if isinstance(only, str) else list(only)
    names = [name for name in names if name]
    for name in names:
        if name not in SECTION_ORDER:
            raise ConfigurationError(MSG_UNKNOWN_SECTION.format(name=name, known=known))
    if not names:
        raise ConfigurationError(MSG_NO_SECTIONS.format(known=known))
    return [name for name in SECTION_ORDER if name in names]


def _run_one(
    section: Section,
    context: AuditContext,
    cache: SectionCache | None,
    progress: AuditProgress | None,
) -> SectionResult:
    if progress is not None:
        progress.start(section.name, section.title)
    ok, reason = section.available(context)
    if not ok:
        if progress is not None:
            progress.finish(section.name, "not_available")
        return section.result(status="not_available", reason=reason)
    settings = section.settings(context)
    key = SectionCache.key(
        model_digest=context.model.digest,
        data_digest=context.data_digest,
        section=section.name,
        settings=settings,
    )
    if cache is not None:
        cached = cache.load(section.name, key)
        if cached is not None:
            if progress is not None:
                progress.finish(section.name, "cached")
            return cached
        context.work_dir = cache.work_dir(section.name, key)
    else:
        context.work_dir = None

    def report(done: float, total: float) -> None:
        if progress is not None:
            progress.update(section.name, done, total)

    context.progress = report
    start = time.perf_counter()
    try:
        result = section.run(context)
    except Exception as err:  # one failing section must not lose the others
        where = traceback.extract_tb(err.__traceback__)[-1]
        detail = (
            ""
            if isinstance(err, TrustlabError)
            else f" (at {Path(where.filename).name}:{where.lineno})"
        )
        if progress is not None:
            progress.finish(section.name, "failed")
        return section.result(
            status="failed", reason=f"{type(err).__name__}: {err}{detail}", options=settings
        )
    result.seconds = time.perf_counter() - start
    if not has_matplotlib():
        result.notes.append(MSG_NO_MATPLOTLIB)
    if cache is not None:
        cache.store(section.name, key, result)
    if progress is not None:
        progress.finish(section.name, "ok")
    return result


def _summary_line(
    section: Section, result: SectionResult, thresholds: Mapping[str, Threshold]
) -> SummaryLine:
    if result.status == "ok":
        return section.summarise(result, thresholds)
    status = "not available" if result.status == "not_available" else "failed"
    return SummaryLine(
        section=section.name,
        title=section.title,
        light="grey",
        headline=f"{status}: {result.reason}",
    )


def run(
    model: nn.Module | PathLike,
    data: AuditData | PathLike,
    *,
    profile: str | Profile = "quick",
    train_data: PathLike | None = None,
    sensitive: Sequence[str] | str | None = None,
    only: Sequence[str] | str | None = None,
    out_dir: PathLike | None = None,
    device: str = "cpu",
    eps: float | None = None,
    thresholds: Mapping[str, tuple[float, float]] | None = None,
    seed: int = 0,
    batch_size: int = 256,
    progress: AuditProgress | None = None,
) -> AuditReport:
    """Audit a classifier: performance, robustness, privacy, fairness, calibration and
    explanations, each measured with its pillar's own code.

    Every input is checked before any work is done or any file written: a bad model, data
    file, section name, sensitive attribute or threshold raises one
    :class:`~trustlab.core.errors.TrustlabError` whose message says what to fix. A section
    that cannot run here (its pillar is not installed, the data lack what it needs) is
    reported as "not available" with the reason; one that fails while running is reported
    as "failed" and the others still run.

    Parameters
    ----------
    model : torch.nn.Module, or str or path
        The model, a trustlab ``.safetensors`` file, an ``.onnx`` file, or
        ``module:function`` / ``path/to/file.py:function`` returning an ``nn.Module``. It must
        map inputs (batch, ...) to logits (batch, n_classes).
    data : AuditData, or str or path
        An ``.npz`` (``x``, ``y``, optional ``member``, ``groups``, ``sensitive_<name>``) or a
        registered data set name (``"digits"``, ``"adult:test"``).
    profile : {"quick", "standard", "thorough"} or Profile, default "quick"
        How much work each section does (see :mod:`trustlab.audit.profiles`).
    train_data : str or path, optional
        The model's training data, for the privacy section when ``data`` has no member flags.
    sensitive : str or sequence of str, optional
        The sensitive attributes to compare (comma-separated or a list); default: every
        attribute in the data with two or more groups.
    only : str or sequence of str, optional
        Run only these sections (comma-separated or a list).
    out_dir : str or path, optional
        Write ``report.html``, ``report.json`` and ``report.md`` here, and cache each finished
        section (a re-run does only the missing work).
    device : str, default "cpu"
        Where the model runs ("cuda" for a GPU); ONNX models run on the CPU.
    eps : float, optional
        The Linf radius of the robustness section; default: the data set's usual radius (0.1
        for digits, 8/255 for CIFAR-10), else 8/255 of the input range for images and 0.1 of
        it for other inputs.
    thresholds : mapping of str to (float, float), optional
        Traffic-light thresholds to override, e.g. ``{"performance.accuracy": (0.95, 0.8)}``.
    seed : int, default 0
        Seeds every subsample and random draw.
    batch_size : int, default 256
        Examples per forward pass.
    progress : AuditProgress, optional
        Receives each section's progress (e.g. :class:`trustlab.audit.RichProgress`).

    Returns
    -------
    AuditReport

    Examples
    --------
    >>> from trustlab.core.models import build_model
    >>> report = run(build_model("digits-cnn"), "digits", only="performance")  # doctest: +SKIP
    >>> report.summary[0].light  # doctest: +SKIP
    'red'
    """
    profile_ = get_profile(profile)
    resolved_thresholds = resolve_thresholds(thresholds)
    names = resolve_sections(only)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None and out.exists() and not out.is_dir():
        raise ConfigurationError(MSG_OUT_IS_FILE.format(path=out))
    if eps is not None and (
        not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps <= 0
    ):
        raise ConfigurationError(MSG_EPS.format(value=eps))
    audit_model = load_audit_model(model, device=device)
    audit_data = load_audit_data(data, train_data=train_data)
    if isinstance(sensitive, str):
        sensitive = [part.strip() for part in sensitive.split(",") if part.strip()]
    groups = select_groups(audit_data, sensitive)
    n_classes = check_model_fits_data(audit_model, audit_data)
    context = AuditContext(
        model=audit_model,
        data=audit_data,
        profile=profile_,
        groups=groups,
        eps=float(eps) if eps is not None else audit_data.default_eps(),
        n_classes=n_classes,
        seed=seed,
        batch_size=batch_size,
        data_digest=audit_data.digest(),
    )
    cache = SectionCache(out) if out is not None else None
    sections = [SECTIONS.get(name)() for name in names]
    results = [_run_one(section, context, cache, progress) for section in sections]
    summary = [
        _summary_line(section, result, resolved_thresholds)
        for section, result in zip(sections, results, strict=True)
    ]
    report = AuditReport(
        model=audit_model.describe(),
        data=audit_data.describe(context.data_digest),
        profile=profile_.name,
        options={
            "profile": profile_.to_dict(),
            "device": str(device),
            "seed": seed,
            "batch_size": batch_size,
            "eps": context.eps,
            "sensitive": sorted(groups),
            "sections": names,
            "n_classes": n_classes,
            "n_evaluation_examples": int(np.size(context.evaluation_index())),
        },
        thresholds={name: item.to_dict() for name, item in resolved_thresholds.items()},
        summary=summary,
        sections=results,
        trustlab_version=__version__,
    )
    if out is not None:
        write_report(report, out)
    return report

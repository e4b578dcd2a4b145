"""The library call end to end on a small tabular model: sections, summary, files, cache."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from trustlab.audit import PROFILES, SCHEMA_VERSION, SECTION_ORDER, AuditData, run
from trustlab.audit.cache import CACHE_DIR
from trustlab.audit.render import REPORT_FILES

QUICK = "performance,privacy,fairness,calibration"
#: The quick profile with fewer bootstrap resamples, to keep these tests fast.
TINY = replace(PROFILES["quick"], name="tiny", n_bootstrap=20)


@pytest.fixture(scope="module")
def audited(tabular, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("audit") / "report"
    report = run(tabular.model, tabular.data, only=QUICK, out_dir=out, profile=TINY)
    return report, out


def test_every_requested_section_runs_and_has_a_summary_line(audited) -> None:  # type: ignore[no-untyped-def]
    report, _ = audited
    assert [s.name for s in report.sections] == QUICK.split(",")
    assert all(s.status == "ok" for s in report.sections), [s.reason for s in report.sections]
    assert [line.section for line in report.summary] == QUICK.split(",")
    for line in report.summary:
        assert line.light in ("green", "amber", "red")
        assert line.rule.startswith("green") or "green" in line.rule


def test_numbers_come_from_the_evaluation_examples(tabular, audited) -> None:  # type: ignore[no-untyped-def]
    report, _ = audited
    performance = report.section("performance").metrics
    assert performance["n_examples"] == int((~tabular.member).sum())
    low, high = performance["accuracy_ci"]
    assert low <= performance["accuracy"] <= high
    privacy = report.section("privacy").metrics
    assert privacy["membership_source"] == "member flags"
    assert privacy["n_members"] == int(tabular.member.sum())
    assert set(privacy["attacks"]) == {"loss_threshold"}
    assert 0.0 <= privacy["attacks"]["loss_threshold"]["auc"]["estimate"] <= 1.0
    fairness = report.section("fairness").metrics
    assert set(fairness["attributes"]["groups"]["groups"]) == {"f", "m"}
    assert fairness["max_gap"] >= 0.0


def test_files_are_written_and_the_json_is_strict(audited) -> None:  # type: ignore[no-untyped-def]
    report, out = audited
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(
        REPORT_FILES
    )
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]
    text = (out / "report.json").read_text()
    data = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-JSON {name}"))
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["thresholds"]["performance.accuracy"]["rule"]
    assert data["sections"][0]["metrics"]["accuracy"] == report.sections[0].metrics["accuracy"]
    markdown = (out / "report.md").read_text()
    assert "## Summary" in markdown
    assert all(line.headline in markdown for line in report.summary)


def test_a_rerun_reads_every_section_from_the_cache(tabular, audited) -> None:  # type: ignore[no-untyped-def]
    first, out = audited
    again = run(
        tabular.model,
        tabular.data,
        only=QUICK,
        out_dir=out,
        thresholds={"performance.accuracy": (1.0, 1.0)},
        profile=TINY,
    )
    assert all(section.cached for section in again.sections)
    assert again.section("privacy").metrics == first.section("privacy").metrics
    # Thresholds change the lights, never the numbers, so they do not invalidate the cache.
    assert again.summary[0].rule.startswith("green >= 1, amber >= 1")
    assert again.summary[0].value == first.summary[0].value


def test_another_seed_misses_the_cache(tabular, audited) -> None:  # type: ignore[no-untyped-def]
    _, out = audited
    again = run(tabular.model, tabular.data, only="performance", out_dir=out, seed=1, profile=TINY)
    assert not again.section("performance").cached
    assert len(list((out / CACHE_DIR).glob("performance-*.json"))) == 2


def test_sections_without_what_they_need_are_not_available(tabular) -> None:  # type: ignore[no-untyped-def]
    data = AuditData("plain", tabular.x, tabular.y)  # no member flags, no groups
    report = run(tabular.model, data, only="privacy,fairness,explanations", profile=TINY)
    reasons = {s.name: (s.status, s.reason) for s in report.sections}
    assert reasons["explanations"][0] == "not_available"
    assert "image models" in reasons["explanations"][1]
    assert reasons["privacy"][0] == "not_available"
    assert "--train-data" in reasons["privacy"][1]
    assert reasons["fairness"][0] == "not_available"
    assert "--sensitive" in reasons["fairness"][1]
    assert {line.light for line in report.summary} == {"grey"}


def test_train_data_stand_in_for_member_flags(tabular, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from trustlab.core.data import save_npz

    member = tabular.member
    save_npz(tmp_path / "train.npz", x=tabular.x[member], y=tabular.y[member])
    data = AuditData("test", tabular.x[~member], tabular.y[~member])
    report = run(
        tabular.model, data, train_data=tmp_path / "train.npz", only="privacy", profile=TINY
    )
    privacy = report.section("privacy")
    assert privacy.status == "ok"
    assert privacy.metrics["membership_source"] == "train data"
    assert privacy.metrics["n_members"] == privacy.metrics["n_non_members"]


def test_a_failing_section_is_reported_and_the_others_still_run(tabular, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from trustlab.audit.sections.fairness import Fairness

    def broken(self, context):  # type: ignore[no-untyped-def]
        raise RuntimeError("boom")

    monkeypatch.setattr(Fairness, "run", broken)
    report = run(tabular.model, tabular.data, only="performance,fairness", profile=TINY)
    assert report.section("performance").status == "ok"
    fairness = report.section("fairness")
    assert fairness.status == "failed" and fairness.reason.startswith("RuntimeError: boom")
    assert report.summary[1].light == "grey"


def test_section_order_is_the_report_order(tabular) -> None:  # type: ignore[no-untyped-def]
    report = run(tabular.model, tabular.data, only=["fairness", "performance"], profile=TINY)
    assert [s.name for s in report.sections] == [
        name for name in SECTION_ORDER if name in ("fairness", "performance")
    ]


@pytest.mark.slow
def test_robustness_on_tabular_inputs(tabular) -> None:  # type: ignore[no-untyped-def]
    report = run(tabular.model, tabular.data, only="robustness", eps=0.05)
    section = report.section("robustness")
    assert section.status == "ok", section.reason
    metrics = section.metrics
    assert metrics["robust_accuracy"] <= metrics["clean_accuracy"]
    curve = [point["robust_accuracy"] for point in metrics["curve"]]
    assert curve == sorted(curve, reverse=True)
    assert {flag["name"] for flag in metrics["sanity"]["flags"]} >= {"gradients", "logits"}
    assert np.isclose(metrics["eps"], 0.05)


@pytest.mark.slow
def test_standard_profile_runs_autoattack_and_rmia(tabular) -> None:  # type: ignore[no-untyped-def]
    report = run(tabular.model, tabular.data, profile="standard", only="robustness,privacy")
    robustness = report.section("robustness")
    assert robustness.status == "ok", robustness.reason
    metrics = robustness.metrics
    # Two classes: the targeted attacks of the standard cascade do not apply.
    assert metrics["attack"].startswith("AutoAttack (custom: apgd-ce")
    assert metrics["robust_accuracy"] <= metrics["pgd_robust_accuracy"]
    privacy = report.section("privacy")
    assert privacy.status == "ok", privacy.reason
    rmia = privacy.metrics["attacks"]["rmia"]
    assert rmia["n_members"] == rmia["n_non_members"] > 0
    assert 0.0 <= rmia["auc"]["estimate"] <= 1.0


def test_one_more_section_runs_only_the_missing_work(tabular, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "report"
    run(tabular.model, tabular.data, only="performance", out_dir=out, profile=TINY)
    report = run(
        tabular.model, tabular.data, only="performance,fairness", out_dir=out, profile=TINY
    )
    assert [(s.name, s.cached) for s in report.sections] == [
        ("performance", True),
        ("fairness", False),
    ]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []

    def start(self, section: str, title: str) -> None:
        self.events.append(("start", section, 0.0))

    def update(self, section: str, done: float, total: float) -> None:
        self.events.append(("update", section, done / total))

    def finish(self, section: str, status: str) -> None:
        self.events.append((status, section, 1.0))


def test_progress_is_reported_per_section(tabular) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    run(
        tabular.model,
        tabular.data,
        only="performance,explanations",
        progress=recorder,
        profile=TINY,
    )
    kinds = [(kind, section) for kind, section, _ in recorder.events]
    assert kinds[0] == ("start", "performance")
    assert ("update", "performance") in kinds
    assert kinds[-2:] == [("start", "explanations"), ("not_available", "explanations")]
    fractions = [f for kind, s, f in recorder.events if kind == "update" and s == "performance"]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_after_a_crash_a_rerun_does_only_the_missing_work(  # type: ignore[no-untyped-def]
    tabular, tmp_path: Path, monkeypatch
) -> None:
    from trustlab.audit.sections.fairness import Fairness

    def crash(self, context):  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt

    out = tmp_path / "report"
    with monkeypatch.context() as patch:
        patch.setattr(Fairness, "run", crash)
        with pytest.raises(KeyboardInterrupt):
            run(tabular.model, tabular.data, only="performance,fairness", out_dir=out, profile=TINY)
    assert not any((out / name).exists() for name in REPORT_FILES)
    report = run(
        tabular.model, tabular.data, only="performance,fairness", out_dir=out, profile=TINY
    )
    assert [(s.name, s.cached, s.status) for s in report.sections] == [
        ("performance", True, "ok"),
        ("fairness", False, "ok"),
    ]
    assert all((out / name).is_file() for name in REPORT_FILES)

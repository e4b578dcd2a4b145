"""Course operations over HTTP: listing, final choices, the Kaggle rule, intervals and ties,
the Ladder, phases, the team's JSON status (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from course_helpers import TASK, add_scored, at, iso
from helpers import ArenaHarness, detail, random_csv

from trustlab.server.models import utcnow


def _edit_spec(harness: ArenaHarness, **changes: Any) -> None:
    path = harness.settings.tasks_dir / TASK / "spec.yaml"
    spec = yaml.safe_load(path.read_text())
    spec.update(changes)
    path.write_text(yaml.safe_dump(spec))
    harness.arena.refresh_tasks()


def _close(harness: ArenaHarness) -> None:
    _edit_spec(harness, deadline=iso(utcnow() - timedelta(seconds=1)))


def _board(harness: ArenaHarness) -> dict[str, Any]:
    response = harness.client.get(f"/api/v1/tasks/{TASK}/leaderboard")
    assert response.status_code == 200
    return dict(response.json())


def test_a_team_lists_only_its_own_submissions(harness: ArenaHarness) -> None:
    mine = add_scored(harness, team="alpha", public=0.3, private=0.2)
    add_scored(harness, team="beta", public=0.5, private=0.4)
    listed = harness.client.get("/api/v1/submissions", headers=harness.headers()).json()
    assert [s["submission_id"] for s in listed] == [mine]
    only = harness.client.get(
        f"/api/v1/submissions?task_id={TASK}", headers=harness.headers()
    ).json()
    assert [s["submission_id"] for s in only] == [mine]
    assert harness.client.get("/api/v1/submissions").status_code == 401
    unknown = harness.client.get("/api/v1/submissions?task_id=nope", headers=harness.headers())
    assert unknown.status_code == 404


def test_select_up_to_k_then_409_and_unselect(harness_factory: Any) -> None:
    harness = harness_factory(final_selections=2)
    ids = [
        add_scored(harness, team="alpha", public=0.1 * i, private=0.1, ago=100 - i)
        for i in range(3)
    ]
    failed = add_scored(harness, team="alpha", public=0, private=0, status="failed")
    other = add_scored(harness, team="beta", public=0.5, private=0.5)

    def post(url: str) -> Any:
        return harness.client.post(url, headers=harness.headers())

    for sid in ids[:2]:
        answer = post(f"/api/v1/submissions/{sid}/select")
        assert answer.status_code == 200 and answer.json()["selected"] is True
    again = post(f"/api/v1/submissions/{ids[0]}/select")
    assert again.status_code == 200  # idempotent
    third = post(f"/api/v1/submissions/{ids[2]}/select")
    assert third.status_code == 409 and "unselect one first" in detail(third)
    assert post(f"/api/v1/submissions/{failed}/select").status_code == 409
    assert post(f"/api/v1/submissions/{other}/select").status_code == 404
    off = post(f"/api/v1/submissions/{ids[0]}/unselect")
    assert off.status_code == 200 and off.json()["selected"] is False
    assert post(f"/api/v1/submissions/{ids[2]}/select").status_code == 200
    _close(harness)
    late = post(f"/api/v1/submissions/{ids[0]}/select")
    assert late.status_code == 403 and "deadline" in detail(late)


def test_private_board_uses_the_best_selected_else_the_best_public(harness: ArenaHarness) -> None:
    # alpha: its best public submission has a poor private score; it selected another one.
    add_scored(harness, team="alpha", public=0.9, private=0.2, ago=300)
    chosen = add_scored(harness, team="alpha", public=0.5, private=0.6, ago=200, selected=True)
    add_scored(harness, team="alpha", public=0.4, private=0.95, ago=100)  # not selected
    # beta selected nothing: its best public submission counts.
    add_scored(harness, team="beta", public=0.7, private=0.3, ago=300)
    add_scored(harness, team="beta", public=0.2, private=0.99, ago=200)
    before = _board(harness)
    assert [(e["team"], e["public_score"]) for e in before["entries"]] == [
        ("alpha", 0.9),
        ("beta", 0.7),
    ]
    assert "best private score among its selected" in before["selection_rule"]
    _close(harness)
    after = _board(harness)
    assert after["final"] is True
    rows = {e["team"]: e for e in after["entries"]}
    assert rows["alpha"]["private_score"] == 0.6 and rows["alpha"]["selected"] is True
    assert rows["beta"]["private_score"] == 0.3 and rows["beta"]["selected"] is False
    assert [e["team"] for e in after["entries"]] == ["alpha", "beta"]
    info = harness.client.get(f"/api/v1/submissions/{chosen}", headers=harness.headers()).json()
    assert info["selected"] is True and info["private_score"] == 0.6


def test_overlapping_intervals_are_ties(harness_factory: Any) -> None:
    harness = harness_factory()
    for name in ("gamma", "delta"):
        harness.add_team(name)
    add_scored(harness, team="alpha", public=0.80, private=0.8, ci=(0.75, 0.85))
    add_scored(harness, team="beta", public=0.78, private=0.8, ci=(0.72, 0.83))
    add_scored(harness, team="gamma", public=0.60, private=0.6, ci=(0.55, 0.65))
    add_scored(harness, team="delta", public=0.59, private=0.6)  # no interval: not a tie
    entries = _board(harness)["entries"]
    assert [(e["team"], e["rank"], e["tied"]) for e in entries] == [
        ("alpha", 1, True),
        ("beta", 1, True),
        ("gamma", 3, False),
        ("delta", 4, False),
    ]
    assert entries[0]["public_interval"] == [0.75, 0.85]
    page = harness.client.get("/leaderboard_page").text
    assert "=1" in page and "[0.750, 0.850]" in page


def test_the_ladder_hides_small_gains_and_rounds(harness_factory: Any) -> None:
    harness = harness_factory(ladder={"step": 0.05})
    first = add_scored(harness, team="alpha", public=0.512, private=0.5, ago=300)
    small = add_scored(harness, team="alpha", public=0.54, private=0.5, ago=200)
    big = add_scored(harness, team="alpha", public=0.63, private=0.5, ago=100)
    shown = {
        s["submission_id"]: s
        for s in harness.client.get("/api/v1/submissions", headers=harness.headers()).json()
    }
    assert shown[first]["public_score"] == pytest.approx(0.5)
    assert shown[small]["public_score"] == pytest.approx(0.5)  # +0.028 < step: no change
    assert shown[big]["public_score"] == pytest.approx(0.65)
    assert shown[big]["metrics"] == {} and any("Ladder" in n for n in shown[big]["notes"])
    board = _board(harness)
    assert board["ladder_step"] == 0.05
    assert board["entries"][0]["public_score"] == pytest.approx(0.65)
    assert board["entries"][0]["public_interval"] is None
    _close(harness)
    info = harness.client.get(f"/api/v1/submissions/{big}", headers=harness.headers()).json()
    assert info["public_score"] == pytest.approx(0.63)


def test_phases_set_the_rules_and_the_blind_final_phase_hides_scores(
    harness_factory: Any, small_task_dir: Path
) -> None:
    phases = [
        {"name": "development", "start": iso(at(-48)), "end": iso(at(-1))},
        {
            "name": "final",
            "start": iso(at(-1)),
            "end": iso(at(24)),
            "split": "private",
            "limits": {"daily": 1, "total": 1},
        },
    ]
    harness = harness_factory(phases=phases, deadline=None)
    dev = add_scored(harness, team="alpha", public=0.4, private=0.4, ago=7200, phase="development")
    final = add_scored(harness, team="alpha", public=0.9, private=0.9, ago=60, phase="final")
    task = harness.client.get(f"/api/v1/tasks/{TASK}").json()
    assert task["phase"] == "final" and [p["name"] for p in task["phases"]] == [
        "development",
        "final",
    ]
    assert task["deadline"].startswith(iso(at(24))[:13])
    assert "Final choice" in task["description"]
    board = _board(harness)
    assert board["phase"] == "final"
    assert board["entries"][0]["public_score"] == 0.4  # the blind phase's 0.9 is not shown
    listed = {
        s["submission_id"]: s
        for s in harness.client.get("/api/v1/submissions", headers=harness.headers()).json()
    }
    assert listed[final]["public_score"] is None and listed[final]["metrics"] == {}
    assert any("blind" in n for n in listed[final]["notes"])
    assert listed[dev]["public_score"] == 0.4
    # The final phase's own total limit (1) is used up by its one submission.
    refused = harness.submit(TASK, random_csv(small_task_dir))
    assert refused.status_code == 429 and "Total limit" in detail(refused)


def test_between_phases_submissions_are_403(harness_factory: Any, small_task_dir: Path) -> None:
    phases = [
        {"name": "development", "start": iso(at(-48)), "end": iso(at(-2))},
        {"name": "final", "start": iso(at(2)), "end": iso(at(24))},
    ]
    harness = harness_factory(phases=phases, deadline=None)
    refused = harness.submit(TASK, random_csv(small_task_dir))
    assert refused.status_code == 403
    assert "between phases" in detail(refused) and "final starts" in detail(refused)
    assert harness.count_rows() == 0


def test_team_status_json_lists_limits_and_submissions(harness_factory: Any) -> None:
    harness = harness_factory(limits={"daily": 3, "total": 10}, final_selections=1)
    sid = add_scored(harness, team="alpha", public=0.3, private=0.2, ago=10, selected=True)
    status = harness.client.get("/api/v1/team/submissions", headers=harness.headers()).json()
    assert status["team"] == "alpha"
    assert [s["submission_id"] for s in status["submissions"]] == [sid]
    (task,) = status["tasks"]
    assert task["daily_used"] == 1 and task["daily_limit"] == 3
    assert task["total_used"] == 1 and task["total_limit"] == 10
    assert task["selected"] == 1 and task["final_selections"] == 1
    assert task["blocked"] is None
    assert harness.client.get("/api/v1/team/submissions").status_code == 401


@pytest.mark.slow
def test_end_to_end_submit_select_and_rescore_keeps_history(
    harness: ArenaHarness, small_task_dir: Path
) -> None:
    from trustlab.server.services import staff

    sid = harness.submit(TASK, random_csv(small_task_dir, 1)).json()["submission_id"]
    assert harness.score_all() == 1
    assert harness.client.post(
        f"/api/v1/submissions/{sid}/select", headers=harness.headers()
    ).json()["selected"]
    assert staff.rescore(harness.arena.sessions, task_id=TASK) == [sid]
    assert harness.score_all() == 1
    info = harness.client.get(f"/api/v1/submissions/{sid}", headers=harness.headers()).json()
    assert info["status"] == "scored" and info["score_version"] == 2 and info["selected"]
    with harness.arena.sessions() as session:
        history = staff.history_csv(session, task_id=TASK).splitlines()
    assert len(history) == 3  # header + two score versions

"""The arena's HTTP contract, driven with FastAPI's test client (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import ArenaHarness, candidate_ids, csv_text, oracle_csv, random_csv
from sqlalchemy import update

from trustlab.server.db import write_session
from trustlab.server.models import Submission, Team, utcnow
from trustlab.server.services import teams

TASK = "mia-small"


def _detail(response) -> str:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"detail"}, body
    assert isinstance(body["detail"], str) and body["detail"]
    return str(body["detail"])


def test_tasks_are_listed_with_their_rules(harness: ArenaHarness) -> None:
    tasks = harness.client.get("/api/v1/tasks").json()
    assert [t["task_id"] for t in tasks] == [TASK]
    task = tasks[0]
    assert task["kind"] == "membership-inference"
    assert task["metric"] == "tpr@0.05"
    assert task["higher_is_better"] is True
    assert task["submission_rules"]["max_file_size"] == 200_000
    assert "id,score" in task["submission_rules"]["format"]

    detail = harness.client.get(f"/api/v1/tasks/{TASK}").json()
    names = {a["name"] for a in detail["artifacts"]}
    assert {"target.safetensors", "candidates.npz", "calibration.npz"} <= names
    assert "answers.npz" not in names
    assert detail["metrics"] == ["tpr@0.05", "tpr@0.01", "auc"]


def test_unknown_task_is_404_everywhere(harness: ArenaHarness) -> None:
    for response in (
        harness.client.get("/api/v1/tasks/nope"),
        harness.client.get("/api/v1/tasks/nope/leaderboard"),
        harness.client.get("/api/v1/tasks/nope/artifacts/x", headers=harness.headers()),
        harness.submit("nope", "id,score\n"),
    ):
        assert response.status_code == 404
        assert "GET /api/v1/tasks" in _detail(response)


def test_artifacts_need_a_key_and_match_their_digest(harness: ArenaHarness) -> None:
    url = f"/api/v1/tasks/{TASK}/artifacts/candidates.npz"
    assert harness.client.get(url).status_code == 401
    bad = harness.client.get(url, headers={"X-API-Key": "tl_000000000000_nope"})
    assert bad.status_code == 401
    assert "not valid" in _detail(bad)
    ok = harness.client.get(url, headers=harness.headers())
    assert ok.status_code == 200
    detail = harness.client.get(f"/api/v1/tasks/{TASK}").json()
    digest = {a["name"]: a["sha256"] for a in detail["artifacts"]}["candidates.npz"]
    import hashlib

    assert hashlib.sha256(ok.content).hexdigest() == digest
    hidden = harness.client.get(
        f"/api/v1/tasks/{TASK}/artifacts/answers.npz", headers=harness.headers()
    )
    assert hidden.status_code == 404


def test_a_submission_is_queued_then_scored(harness: ArenaHarness, small_task_dir: Path) -> None:
    response = harness.submit(TASK, oracle_csv(small_task_dir))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and len(body["submission_id"]) == 32
    url = f"/api/v1/submissions/{body['submission_id']}"
    assert harness.client.get(url, headers=harness.headers()).json()["status"] == "queued"

    assert harness.score_all() == 1
    info = harness.client.get(url, headers=harness.headers()).json()
    assert info["status"] == "scored", info
    assert info["public_score"] == 1.0
    assert info["metrics"]["auc"] == 1.0
    assert set(info["metrics"]) >= {"tpr@0.05", "tpr@0.01", "auc", "tpr@0.05_ci95"}
    assert info["private_score"] is None and info["private_metrics"] is None
    assert info["error"] is None


def test_random_scores_land_near_the_fpr(harness: ArenaHarness, small_task_dir: Path) -> None:
    from trustlab.tasks import open_task

    task = open_task(small_task_dir)
    values = []
    for seed in range(40):
        path = small_task_dir.parent / f"random-{seed}.csv"
        path.write_text(random_csv(small_task_dir, seed))
        result = task.kind.score(task.spec, paths=task.paths, file=path, fields={})
        values.append(result.private_score)
        path.unlink()
    assert abs(float(np.mean(values)) - 0.05) < 0.02


def test_another_teams_submission_is_not_visible(
    harness: ArenaHarness, small_task_dir: Path
) -> None:
    sub = harness.submit(TASK, random_csv(small_task_dir)).json()["submission_id"]
    other = harness.client.get(f"/api/v1/submissions/{sub}", headers=harness.headers("beta"))
    assert other.status_code == 404
    assert harness.client.get(f"/api/v1/submissions/{sub}").status_code == 401


def _bad_files(task_dir: Path) -> list[tuple[str, bytes, str]]:
    ids = candidate_ids(task_dir)
    good = [f"{i},0.5" for i in ids]
    header = "id,score"
    return [
        ("empty", b"", "empty"),
        ("no header", "\n".join(good).encode(), "header"),
        ("missing id", "\n".join([header, *good[1:]]).encode(), "have no row"),
        ("duplicate id", "\n".join([header, *good, good[3]]).encode(), "second time"),
        ("unknown id", "\n".join([header, *good, "999999,0.1"]).encode(), "not a candidate"),
        ("nan", "\n".join([header, "0,nan", *good[1:]]).encode(), "finite"),
        ("inf", "\n".join([header, "0,-inf", *good[1:]]).encode(), "finite"),
        ("text", "\n".join([header, "0,high", *good[1:]]).encode(), "not a number"),
        ("text id", "\n".join([header, "abc,0.1", *good]).encode(), "not an integer"),
        ("three columns", "\n".join([header, "0,0.1,7", *good[1:]]).encode(), "2 comma"),
        ("not utf-8", b"id,score\n0,\xff\xfe\n", "UTF-8"),
    ]


def test_bad_files_are_refused_and_leave_nothing(
    harness_factory,
    small_task_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    harness = harness_factory(cooldown={"accepted": 3600, "failed": 3600})
    for name, content, expected in _bad_files(small_task_dir):
        response = harness.submit(TASK, content)
        assert response.status_code == 400, (name, response.text)
        assert expected in _detail(response), (name, response.json())
    assert harness.count_rows() == 0
    assert harness.stored_files() == []
    # None of the refusals started the (one hour) cooldown:
    assert harness.submit(TASK, random_csv(small_task_dir)).status_code == 202


def test_error_messages_name_the_line(harness: ArenaHarness, small_task_dir: Path) -> None:
    ids = candidate_ids(small_task_dir)
    lines = ["id,score"] + [f"{i},0.5" for i in ids]
    lines[5] = f"{ids[4]},nan"
    detail = _detail(harness.submit(TASK, "\n".join(lines)))
    assert detail.startswith("Line 6:")


def test_file_over_the_limit_is_413(harness: ArenaHarness, small_task_dir: Path) -> None:
    big = random_csv(small_task_dir) + "\n" * 300_000
    response = harness.submit(TASK, big)
    assert response.status_code == 413
    assert "limit of 200000 bytes" in _detail(response)
    assert harness.count_rows() == 0 and harness.stored_files() == []


def test_form_without_file_is_422_and_garbage_body_is_400(harness: ArenaHarness) -> None:
    response = harness.client.post(f"/submit/{TASK}", headers=harness.headers(), data={"note": "x"})
    assert response.status_code == 422
    assert "'file'" in _detail(response)
    garbage = harness.client.post(
        f"/submit/{TASK}",
        headers={**harness.headers(), "Content-Type": "multipart/form-data; boundary=zz"},
        content=b"--zz\r\nnot a part",
    )
    assert garbage.status_code in (400, 422)
    _detail(garbage)
    assert harness.count_rows() == 0


def test_revoked_and_expired_keys_are_refused(harness: ArenaHarness, small_task_dir: Path) -> None:
    with write_session(harness.arena.sessions) as session:
        teams.revoke(session, name="beta")
    response = harness.submit(TASK, random_csv(small_task_dir), team="beta")
    assert response.status_code == 401 and "revoked" in _detail(response)

    with write_session(harness.arena.sessions) as session:
        session.execute(
            update(Team)
            .where(Team.name == "alpha")
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    response = harness.submit(TASK, random_csv(small_task_dir))
    assert response.status_code == 401 and "expired" in _detail(response)
    assert harness.count_rows() == 0


def test_missing_key_is_401(harness: ArenaHarness) -> None:
    response = harness.client.post(f"/submit/{TASK}", files={"file": ("a.csv", b"id,score\n")})
    assert response.status_code == 401
    assert "X-API-Key" in _detail(response)


def test_cooldown_after_an_accepted_submission(
    harness_factory,
    small_task_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    harness = harness_factory(cooldown={"accepted": 120, "failed": 5})
    assert harness.submit(TASK, random_csv(small_task_dir)).status_code == 202
    second = harness.submit(TASK, random_csv(small_task_dir, 1))
    assert second.status_code == 429
    assert 0 < int(second.headers["Retry-After"]) <= 120
    assert "Cooldown" in _detail(second)
    # Teams do not share cooldowns.
    assert harness.submit(TASK, random_csv(small_task_dir), team="beta").status_code == 202
    assert harness.count_rows() == 2


def test_cooldown_after_a_failed_submission_is_the_failed_one(
    harness_factory,
    small_task_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    harness = harness_factory(cooldown={"accepted": 3600, "failed": 2})
    sub = harness.submit(TASK, random_csv(small_task_dir)).json()["submission_id"]
    with write_session(harness.arena.sessions) as session:
        session.execute(
            update(Submission)
            .where(Submission.id == sub)
            .values(status="failed", created_at=utcnow() - timedelta(seconds=3))
        )
    assert harness.submit(TASK, random_csv(small_task_dir)).status_code == 202


def test_daily_limit_counts_only_accepted_submissions(
    harness_factory,
    small_task_dir: Path,  # type: ignore[no-untyped-def]
) -> None:
    harness = harness_factory(limits={"daily": 2, "total": None})
    assert harness.submit(TASK, random_csv(small_task_dir)).status_code == 202
    assert harness.submit(TASK, b"id,score\n").status_code == 400
    assert harness.submit(TASK, random_csv(small_task_dir)).status_code == 202
    third = harness.submit(TASK, random_csv(small_task_dir))
    assert third.status_code == 429
    assert "Daily limit" in _detail(third)
    now = datetime.now(timezone.utc)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert abs(int(third.headers["Retry-After"]) - (midnight - now).total_seconds()) < 5


def test_total_limit(harness_factory, small_task_dir: Path) -> None:  # type: ignore[no-untyped-def]
    harness = harness_factory(limits={"daily": None, "total": 1})
    assert harness.submit(TASK, random_csv(small_task_dir)).status_code == 202
    second = harness.submit(TASK, random_csv(small_task_dir))
    assert second.status_code == 429
    assert "Total limit" in _detail(second)
    assert "Retry-After" in second.headers


def _close_task(harness: ArenaHarness, task_id: str = TASK) -> None:
    spec_path = harness.settings.tasks_dir / task_id / "spec.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    spec["deadline"] = (datetime.now(timezone.utc) - timedelta(seconds=1)).isoformat()
    spec_path.write_text(yaml.safe_dump(spec))
    harness.arena.refresh_tasks()


def test_leaderboard_public_before_and_private_after_the_deadline(
    harness: ArenaHarness, small_task_dir: Path
) -> None:
    assert harness.submit(TASK, random_csv(small_task_dir, 3)).status_code == 202
    best = harness.submit(TASK, oracle_csv(small_task_dir)).json()["submission_id"]
    assert harness.submit(TASK, random_csv(small_task_dir, 4), team="beta").status_code == 202
    assert harness.score_all() == 3

    board = harness.client.get(f"/api/v1/tasks/{TASK}/leaderboard").json()
    assert board["final"] is False
    assert [e["team"] for e in board["entries"]] == ["alpha", "beta"]
    alpha = board["entries"][0]
    assert alpha["public_score"] == 1.0 and alpha["submissions"] == 2
    assert all(e["private_score"] is None for e in board["entries"])
    assert "private" not in json.dumps(
        harness.client.get(f"/api/v1/submissions/{best}", headers=harness.headers()).json()[
            "metrics"
        ]
    )
    page = harness.client.get("/leaderboard_page")
    assert page.status_code == 200 and "alpha" in page.text and "Private score" not in page.text

    _close_task(harness)
    board = harness.client.get(f"/api/v1/tasks/{TASK}/leaderboard").json()
    assert board["final"] is True
    assert board["entries"][0]["private_score"] == 1.0
    assert all(e["private_score"] is not None for e in board["entries"])
    info = harness.client.get(f"/api/v1/submissions/{best}", headers=harness.headers()).json()
    assert info["private_score"] == 1.0 and info["private_metrics"]["auc"] == 1.0
    page = harness.client.get(f"/leaderboard_page?task_id={TASK}")
    assert "Private score" in page.text and "final" in page.text


def test_submissions_after_the_deadline_are_403(
    harness: ArenaHarness, small_task_dir: Path
) -> None:
    _close_task(harness)
    response = harness.submit(TASK, random_csv(small_task_dir))
    assert response.status_code == 403
    assert "deadline" in _detail(response)
    assert harness.count_rows() == 0


def test_a_new_key_replaces_the_old_one(harness: ArenaHarness, small_task_dir: Path) -> None:
    old = harness.keys["alpha"]
    with write_session(harness.arena.sessions) as session:
        new = teams.rotate_key(session, name="alpha")
    assert new != old
    assert harness.submit(TASK, random_csv(small_task_dir)).status_code == 401
    harness.keys["alpha"] = new
    assert harness.submit(TASK, random_csv(small_task_dir)).status_code == 202


def test_scores_do_not_depend_on_row_order(harness: ArenaHarness, small_task_dir: Path) -> None:
    ids = candidate_ids(small_task_dir)
    scores = np.random.default_rng(7).random(len(ids))
    order = np.random.default_rng(8).permutation(len(ids))
    a = harness.submit(TASK, csv_text(ids, scores)).json()["submission_id"]
    b = harness.submit(TASK, csv_text(ids[order], scores[order]), team="beta").json()[
        "submission_id"
    ]
    harness.score_all()
    get = harness.client.get
    sa = get(f"/api/v1/submissions/{a}", headers=harness.headers()).json()
    sb = get(f"/api/v1/submissions/{b}", headers=harness.headers("beta")).json()
    assert sa["metrics"] == sb["metrics"]


@pytest.mark.parametrize("bad", ["", "x" * 100, "tl_short_x", "tl_0123456789ab_"])
def test_malformed_keys_are_401(harness: ArenaHarness, bad: str) -> None:
    response = harness.client.get(
        f"/api/v1/tasks/{TASK}/artifacts/candidates.npz", headers={"X-API-Key": bad}
    )
    assert response.status_code == 401


def test_uploads_must_declare_their_length(harness: ArenaHarness, small_task_dir: Path) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n\r\n'
        yield random_csv(small_task_dir).encode()
        yield b"\r\n--b--\r\n"

    response = harness.client.post(
        f"/submit/{TASK}",
        headers={**harness.headers(), "Content-Type": "multipart/form-data; boundary=b"},
        content=chunks(),
    )
    assert response.status_code == 411
    assert "Content-Length" in _detail(response)
    assert harness.count_rows() == 0


def test_a_declared_body_far_over_the_limit_is_refused_unread(harness: ArenaHarness) -> None:
    response = harness.client.post(
        f"/submit/{TASK}",
        headers={**harness.headers(), "Content-Length": str(50 * 1000**2)},
        content=b"x",
    )
    assert response.status_code == 413

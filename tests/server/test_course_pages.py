"""The team status page and the staff page: logins, cookies, no secret in the HTML, and a
headless Chromium check that both load without console errors."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from course_helpers import add_scored
from helpers import ArenaHarness, ThreadedServer, install_task, start_harness
from sqlalchemy import select

from trustlab.server.db import write_session
from trustlab.server.models import Team
from trustlab.server.services import teams
from trustlab.server.services.workers import beat

STAFF_KEY = "staff-secret-0123456789"


def _link(harness: ArenaHarness, team: str = "alpha", days: float = 1.0) -> str:
    with write_session(harness.arena.sessions) as session:
        row = teams.get_team(session, name=team)
        return teams.new_login(session, team=row, kind=teams.LINK, lifetime=timedelta(days=days))


def test_team_page_login_sets_an_httponly_samesite_cookie(harness: ArenaHarness) -> None:
    sid = add_scored(harness, team="alpha", public=0.3, private=0.2)
    client = harness.client
    form = client.get("/team")
    assert form.status_code == 200 and 'name="key"' in form.text
    bad = client.post("/team/login", data={"key": "tl_000000000000_wrong"}, follow_redirects=False)
    assert bad.status_code == 401 and "not valid" in bad.text
    key = harness.keys["alpha"]
    ok = client.post("/team/login", data={"key": key}, follow_redirects=False)
    assert ok.status_code == 303
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert key.lower() not in cookie
    page = client.get("/team")
    assert page.status_code == 200 and sid in page.text and "alpha" in page.text
    assert key not in page.text
    assert page.headers["cache-control"] == "no-store"
    client.post("/team/logout", follow_redirects=False)
    client.cookies.clear()
    assert sid not in client.get("/team").text


def test_login_link_works_once_and_dies_with_the_key(harness: ArenaHarness) -> None:
    token = _link(harness)
    first = harness.client.get(f"/team/login/{token}", follow_redirects=False)
    assert first.status_code == 303 and "trustlab_team=" in first.headers["set-cookie"]
    assert "alpha" in harness.client.get("/team").text
    harness.client.cookies.clear()
    again = harness.client.get(f"/team/login/{token}", follow_redirects=False)
    assert again.status_code == 401
    # A session ends when the team's key is rotated.
    fresh = _link(harness)
    harness.client.get(f"/team/login/{fresh}")
    with write_session(harness.arena.sessions) as session:
        teams.rotate_key(session, name="alpha")
    assert 'name="key"' in harness.client.get("/team").text


def test_staff_page_is_off_without_a_staff_key(harness: ArenaHarness) -> None:
    response = harness.client.get("/staff")
    assert response.status_code == 404 and "TRUSTLAB_STAFF_KEY" in response.json()["detail"]


@pytest.fixture
def staff_harness(make_settings: Any, small_task_dir: Any, data_dir: Any) -> Iterator[ArenaHarness]:
    install_task(small_task_dir, data_dir)
    harness = start_harness(make_settings(staff_key=STAFF_KEY))()
    yield harness
    harness.client.__exit__(None, None, None)


def test_staff_page_shows_queue_workers_failures_and_counts(staff_harness: ArenaHarness) -> None:
    harness = staff_harness
    add_scored(harness, team="alpha", public=0.3, private=0.2)
    add_scored(harness, team="beta", public=0, private=0, status="failed")
    beat(harness.arena.sessions, name="gpu-box:42", device="cuda", current=None)
    client = harness.client
    login = client.get("/staff")
    assert login.status_code == 200 and 'name="key"' in login.text and "gpu-box" not in login.text
    assert client.get("/staff", headers={"X-Staff-Key": "nope"}).text == login.text
    assert client.post("/staff/login", data={"key": "nope"}).status_code == 401
    # A team key is not a staff key.
    team_key = harness.keys["alpha"]
    assert client.post("/staff/login", data={"key": team_key}).status_code == 401
    ok = client.post("/staff/login", data={"key": STAFF_KEY}, follow_redirects=False)
    assert ok.status_code == 303
    assert "httponly" in ok.headers["set-cookie"].lower()
    assert STAFF_KEY not in ok.headers["set-cookie"]
    page = client.get("/staff")
    assert page.status_code == 200
    for text in ("gpu-box:42", "cuda", "broken", "mia-small", "queued"):
        assert text in page.text
    assert STAFF_KEY not in page.text and team_key not in page.text


@pytest.mark.slow
def test_team_and_staff_pages_load_cleanly_in_chromium(
    make_settings: Any, small_task_dir: Any, data_dir: Any
) -> None:
    from browser import load_page

    install_task(small_task_dir, data_dir)
    with ThreadedServer(make_settings(staff_key=STAFF_KEY)) as server:
        key = server.add_team("alpha")
        server.add_team("beta")
        shim: Any = SimpleNamespace(arena=server.arena)
        scored = add_scored(shim, team="alpha", public=0.3, private=0.2, ci=(0.2, 0.4))
        add_scored(shim, team="alpha", public=0, private=0, status="failed")
        add_scored(shim, team="beta", public=0.31, private=0.2, ci=(0.25, 0.41))
        sessions = server.arena.sessions
        with write_session(sessions) as session:
            team = session.scalars(select(Team).where(Team.name == "alpha")).one()
            token = teams.new_login(session, team=team, kind=teams.LINK, lifetime=timedelta(days=1))
        beat(sessions, name="cpu-box:1", device="cpu", current=None)

        login_form = load_page(f"{server.url}/team")
        assert login_form.status == 200 and login_form.clean, login_form
        team_page = load_page(f"{server.url}/team/login/{token}")
        assert team_page.status == 200 and team_page.clean, team_page
        assert "alpha" in team_page.text and scored in team_page.text
        assert "broken" in team_page.text
        assert key not in team_page.html and token not in team_page.html

        staff_page = load_page(f"{server.url}/staff", headers={"X-Staff-Key": STAFF_KEY})
        assert staff_page.status == 200 and staff_page.clean, staff_page
        assert "cpu-box:1" in staff_page.text
        assert STAFF_KEY not in staff_page.html and key not in staff_page.html

        board = load_page(f"{server.url}/leaderboard_page")
        assert board.status == 200 and board.clean, board
        assert "=1" in board.text

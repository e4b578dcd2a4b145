"""The team's side of course operations: the Python client's and the CLI's listing and final
choices."""

from __future__ import annotations

from typing import Any

import pytest
import typer
from helpers import ArenaHarness, ThreadedServer, install_task
from typer.testing import CliRunner

from trustlab.cli import client as client_cli
from trustlab.client import ArenaClient, ArenaError

TASK = "mia-small"


def _client(harness: ArenaHarness, team: str = "alpha") -> ArenaClient:
    transport = harness.client._transport  # the app, in-process
    return ArenaClient("http://testserver", api_key=harness.keys[team], transport=transport)


def test_client_lists_selects_and_unselects(harness: ArenaHarness) -> None:
    from course_helpers import add_scored

    sid = add_scored(harness, team="alpha", public=0.4, private=0.3)
    with _client(harness) as client:
        assert [s.submission_id for s in client.submissions()] == [sid]
        assert [s.submission_id for s in client.submissions(TASK)] == [sid]
        assert client.select(sid).selected is True
        status = client.team_status()
        assert status.team == "alpha" and status.tasks[0].selected == 1
        assert client.unselect(sid).selected is False
    with _client(harness, "beta") as other, pytest.raises(ArenaError) as caught:
        other.select(sid)
    assert caught.value.status_code == 404


@pytest.mark.slow
def test_cli_select_and_submissions(
    make_settings: Any, small_task_dir: Any, data_dir: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from course_helpers import add_scored

    app = typer.Typer()
    app.command("submissions")(client_cli.submissions)
    app.command("select")(client_cli.select)
    app.command("unselect")(client_cli.unselect)
    install_task(small_task_dir, data_dir)
    runner = CliRunner()
    with ThreadedServer(make_settings()) as server:
        key = server.add_team("alpha")
        sid = add_scored(SimpleNamespace(arena=server.arena), team="alpha", public=0.4, private=0.3)  # type: ignore[arg-type]
        where = ["--url", server.url, "--key", key]
        listed = runner.invoke(app, ["submissions", *where])
        assert listed.exit_code == 0 and sid in listed.stdout
        chosen = runner.invoke(app, ["select", sid, *where])
        assert chosen.exit_code == 0 and "marked as final" in chosen.output
        assert "final" in runner.invoke(app, ["submissions", *where]).stdout
        assert runner.invoke(app, ["unselect", sid, *where]).exit_code == 0

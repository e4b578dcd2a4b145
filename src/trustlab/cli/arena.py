"""``trustlab demo``, ``serve`` and ``worker``: running the arena."""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from trustlab.cli._common import DatabaseOpt, DataDirOpt, console, out, settings_from
from trustlab.server.arena import Arena
from trustlab.server.db import write_session
from trustlab.server.services import teams
from trustlab.server.settings import Settings
from trustlab.tasks import build_task, load_spec
from trustlab.tasks.base import TaskPaths, read_manifest

HostOpt = Annotated[str | None, typer.Option("--host", help="Address to listen on [127.0.0.1].")]
PortOpt = Annotated[int | None, typer.Option("--port", help="Port to listen on [8000].")]
WorkersOpt = Annotated[
    int | None, typer.Option("--workers", min=0, help="Worker processes to start [1].")
]
DEMO_TEAM = "demo"


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def demo_specs() -> list[Path]:
    folder = resources.files("trustlab.tasks") / "specs"
    return sorted(Path(str(folder / p.name)) for p in folder.iterdir() if p.name.endswith(".yaml"))


def prepare_demo(settings: Settings) -> str:
    """Build the demo tasks (unless already built from the same spec) and key the demo team."""
    import hashlib

    for spec_path in demo_specs():
        spec = load_spec(spec_path)
        paths = TaskPaths(settings.tasks_dir / spec.id)
        wanted = hashlib.sha256(spec.to_yaml().encode()).hexdigest()
        if paths.manifest.is_file() and read_manifest(paths).get("spec_sha256") == wanted:
            console.print(f"task [bold]{spec.id}[/] is already built")
            continue
        with console.status(f"building demo task {spec.id}") as status:

            def progress(message: str, _id: str = spec.id) -> None:
                status.update(f"building demo task {_id}: {message}")

            build_task(spec, tasks_dir=settings.tasks_dir, progress=progress)
        console.print(f"built task [bold]{spec.id}[/]")
    arena = Arena(settings)
    arena.start()
    with write_session(arena.sessions) as session:
        try:
            teams.get_team(session, name=DEMO_TEAM)
            key = teams.rotate_key(session, name=DEMO_TEAM)
        except KeyError:
            _, key = teams.create_team(session, name=DEMO_TEAM)
    arena.close()
    return key


def demo(
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    workers: WorkersOpt = None,
    serve_: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve after setting up.")
    ] = True,
) -> None:
    """Build the demo tasks, create the demo team, print its key, and serve the arena."""
    from trustlab.server.runner import serve

    settings = settings_from(data_dir, database_url, host=host, port=port, workers=workers)
    key = prepare_demo(settings)
    url = f"http://{settings.host}:{settings.port}"
    console.print(
        f"\n[bold]trustlab arena[/] on {url}  (leaderboards: {url}/leaderboard_page)\n"
        f"Demo team key (new on every run):\n"
    )
    out.print(
        f"export TRUSTLAB_URL={url} TRUSTLAB_API_KEY={key}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    console.print(
        '\nTry:  curl -H "X-API-Key: $TRUSTLAB_API_KEY" -O '
        f"{url}/api/v1/tasks/mia-digits/artifacts/sample_submission.csv\n"
        "      trustlab submit mia-digits sample_submission.csv --wait\n"
    )
    if serve_:
        _logging()
        serve(settings)


def serve_cmd(
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    host: HostOpt = None,
    port: PortOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Serve the arena with its worker processes (tasks come from the data folder)."""
    from trustlab.server.runner import serve

    _logging()
    serve(settings_from(data_dir, database_url, host=host, port=port, workers=workers))


def worker(
    data_dir: DataDirOpt = None,
    database_url: DatabaseOpt = None,
    max_jobs: Annotated[
        int | None, typer.Option("--max-jobs", help="Stop after this many jobs.")
    ] = None,
    idle_exit: Annotated[
        bool, typer.Option("--idle-exit", help="Stop when the queue is empty.")
    ] = False,
    celery: Annotated[
        bool,
        typer.Option(
            "--celery",
            help="Take jobs from the Celery broker (TRUSTLAB_BROKER_URL), not by polling.",
        ),
    ] = False,
    parent_pid: Annotated[
        int | None,
        typer.Option("--parent-pid", hidden=True, help="Stop when this process dies."),
    ] = None,
) -> None:
    """Score queued submissions (run several, here or on other machines)."""
    from trustlab.server.worker import Worker

    _logging()
    settings = settings_from(data_dir, database_url)
    if celery:
        from trustlab.server.dispatch import make_celery

        app = make_celery(settings)
        app.worker_main(
            [
                "worker",
                "--pool=solo",
                "--concurrency=1",
                "--loglevel=INFO",
                "-Q",
                settings.celery_queue,
                "--without-gossip",
                "--without-mingle",
            ]
        )
        return
    w = Worker(settings)
    w.install_signal_handlers()
    if parent_pid is not None:
        w.watch_parent(parent_pid)
    w.run(max_jobs=max_jobs, idle_exit=idle_exit)

"""``trustlab demo``, ``serve`` and ``worker``: running the arena."""

from __future__ import annotations

import errno
import logging
import os
import socket
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer

from trustlab.cli._common import DatabaseOpt, DataDirOpt, console, out, settings_from
from trustlab.core.errors import ConfigurationError
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
#: Written into the data folder while a demo serves: "PID HOST PORT".
DEMO_PID_FILE = "demo.pid"

MSG_DEMO_RUNNING = (
    "A trustlab demo is already running {where}. Nothing was changed: its team key still "
    "works. Use it, stop it first (Ctrl-C in its terminal), or start another one with "
    "--port PORT (or TRUSTLAB_PORT) and --data-dir FOLDER."
)


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, but another user's
        return True
    return True


def _port_in_use(host: str, port: int) -> bool:
    """Whether the server could not listen on ``host:port`` (as uvicorn binds: SO_REUSEADDR)."""
    if port == 0:
        return False
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError:
        return False  # an unknown host: the server will say so itself
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return exc.errno in (errno.EADDRINUSE, errno.EACCES)
    return False


def running_demo(settings: Settings, *, check_port: bool) -> str | None:
    """Where a demo is already running for these settings (its pid file, its port), or None."""
    pid_file = settings.data_dir / DEMO_PID_FILE
    if pid_file.is_file():
        try:
            pid_text, host, port = pid_file.read_text().split()
            pid = int(pid_text)
        except ValueError:
            pid = -1
        if pid > 0 and pid != os.getpid() and _alive(pid):
            return (
                f"on http://{host}:{port} with the data folder {settings.data_dir} (process {pid})"
            )
    if check_port and _port_in_use(settings.host, settings.port):
        return f"on http://{settings.host}:{settings.port} (the port is in use)"
    return None


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
    where = running_demo(settings, check_port=serve_)
    if where is not None:
        raise ConfigurationError(MSG_DEMO_RUNNING.format(where=where))
    key = prepare_demo(settings)
    url = f"http://{settings.host}:{settings.port}"
    # soft_wrap: the lines are never broken, so URLs and commands stay whole when copied,
    # whatever the terminal's width or when the output is not a terminal.
    console.print(
        f"\n[bold]trustlab arena[/] on {url}  (leaderboards: {url}/leaderboard_page)\n"
        f"Demo team key (new on every run):\n",
        soft_wrap=True,
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
        "      trustlab submit mia-digits sample_submission.csv --wait\n",
        highlight=False,
        soft_wrap=True,
    )
    if serve_:
        _logging()
        pid_file = settings.data_dir / DEMO_PID_FILE
        pid_file.write_text(f"{os.getpid()} {settings.host} {settings.port}\n")
        try:
            serve(settings)
        finally:
            pid_file.unlink(missing_ok=True)


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

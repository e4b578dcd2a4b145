"""The ``trustlab`` command line: teams, task builds, local checks, version and demo.

``CliRunner`` drives the Typer app in-process. What :func:`trustlab.cli.main` makes of errors
(one ``error:`` line on stderr, exit code 1, no traceback) is checked by calling it in-process
with a patched ``sys.argv`` and, a few times, through ``python -m trustlab`` as a user would.
"""

from __future__ import annotations

import copy
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from cli_runner import Outcome
from digests import tree_digest
from specs import SMALL_SPEC
from typer.testing import CliRunner

import trustlab
from trustlab.cli import app
from trustlab.server.arena import Arena
from trustlab.server.errors import ApiError
from trustlab.server.services import teams
from trustlab.server.settings import Settings
from trustlab.tasks import load_spec, parse_spec

runner = CliRunner()


@pytest.fixture(autouse=True)
def _no_trustlab_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("TRUSTLAB_"):
            monkeypatch.delenv(name)


def cli(*args: str | Path) -> Any:
    """Run the app in-process; stdout and stderr are kept apart."""
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=True)


def run_main(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m trustlab`` as a user would, with a clean TRUSTLAB_* environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRUSTLAB_")}
    env["COLUMNS"] = "80"
    return subprocess.run(
        [sys.executable, "-m", "trustlab", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=120,
        check=False,
    )


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "no output"
    return lines[-1]


def assert_clean_error(proc: Outcome | subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit code 1, an ``error:`` message on stderr, no traceback."""
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Traceback" not in proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def assert_usage_error(proc: Outcome | subprocess.CompletedProcess[str], *needles: str) -> None:
    """Exit code 2, one ``error:`` line on stderr and nothing else, no traceback, no help."""
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout.strip() == ""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def authenticate(data_dir: Path, key: str) -> str:
    arena = Arena(Settings(data_dir=data_dir))
    try:
        with arena.sessions() as session:
            return teams.authenticate(session, key).name
    finally:
        arena.close()


def create_team(data_dir: Path, name: str) -> str:
    result = cli("admin", "team", "create", name, "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    return last_line(result.stdout)


def write_spec(path: Path, **changes: Any) -> Path:
    data = copy.deepcopy(SMALL_SPEC)
    data["params"]["epochs"] = 2
    data.update(changes)
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# -- version --------------------------------------------------------------------------------


def test_version() -> None:
    result = cli("version")
    assert result.exit_code == 0
    assert result.stdout.strip() == trustlab.__version__


@pytest.mark.slow
def test_version_through_main(tmp_path: Path) -> None:
    proc = run_main("version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == trustlab.__version__


# -- teams ----------------------------------------------------------------------------------


def test_team_create_prints_the_key_alone_on_the_last_line(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = cli("admin", "team", "create", "alpha", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    key = last_line(result.stdout)
    assert key.startswith("tl_")
    assert " " not in key
    assert key == result.stdout.strip().splitlines()[-1]
    assert authenticate(data_dir, key) == "alpha"
    # The chatter goes to stderr, so `KEY=$(trustlab admin team create ...)` gets the key only.
    assert "alpha" in result.stderr
    assert result.stdout.strip() == key


@pytest.mark.slow
def test_creating_the_same_team_twice_fails_clearly(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    create_team(data_dir, "alpha")
    proc = run_main("admin", "team", "create", "alpha", "--data-dir", data_dir, cwd=tmp_path)
    assert_clean_error(proc, "already exists", "'alpha'")
    # The whole message stays on one line, however narrow the terminal.
    assert f"error: {teams.MSG_EXISTS.format(name='alpha')}" in proc.stderr.splitlines()
    assert proc.stdout.strip() == ""


def test_team_with_a_bad_name_fails_clearly(trustlab_main: Any, tmp_path: Path) -> None:
    proc = trustlab_main("admin", "team", "create", "no/slash", "--data-dir", tmp_path)
    assert_clean_error(proc, "not allowed")


def test_team_list_revoke_and_rotate(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    old_key = create_team(data_dir, "alpha")
    create_team(data_dir, "beta")

    result = cli("admin", "team", "list", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    alpha = next(line for line in result.stdout.splitlines() if "alpha" in line)
    assert "active" in alpha

    result = cli("admin", "team", "revoke", "alpha", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    listing = cli("admin", "team", "list", "--data-dir", data_dir).stdout
    alpha = next(line for line in listing.splitlines() if "alpha" in line)
    beta = next(line for line in listing.splitlines() if "beta" in line)
    assert "revoked" in alpha
    assert "active" in beta
    with pytest.raises(ApiError, match="revoked"):
        authenticate(data_dir, old_key)

    result = cli("admin", "team", "rotate", "alpha", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    new_key = last_line(result.stdout)
    assert new_key.startswith("tl_")
    assert new_key != old_key
    assert authenticate(data_dir, new_key) == "alpha"
    with pytest.raises(ApiError):
        authenticate(data_dir, old_key)
    listing = cli("admin", "team", "list", "--data-dir", data_dir).stdout
    assert "active" in next(line for line in listing.splitlines() if "alpha" in line)


def test_revoking_an_unknown_team_fails_clearly(trustlab_main: Any, tmp_path: Path) -> None:
    proc = trustlab_main("admin", "team", "revoke", "ghost", "--data-dir", tmp_path)
    assert_clean_error(proc, "No team named 'ghost'")


# -- tasks ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_task(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """``trustlab task build`` of the small spec (2 epochs); returns the data folder and result."""
    root = tmp_path_factory.mktemp("cli-build")
    spec = write_spec(root / "spec.yaml")
    data_dir = root / "data"
    result = cli("task", "build", spec, "--data-dir", data_dir)
    return data_dir, result


def test_task_build_prints_the_task_folder_last(built_task: tuple[Path, Any]) -> None:
    data_dir, result = built_task
    assert result.exit_code == 0, result.output
    folder = Path(last_line(result.stdout))
    assert folder == data_dir / "tasks" / SMALL_SPEC["id"]
    assert (folder / "manifest.json").is_file()
    assert (folder / "public" / "candidates.npz").is_file()
    assert result.stdout.strip() == str(folder)


def test_task_build_twice_gives_identical_files(
    built_task: tuple[Path, Any], tmp_path: Path
) -> None:
    data_dir, _ = built_task
    first = data_dir / "tasks" / SMALL_SPEC["id"]
    spec = write_spec(tmp_path / "spec.yaml")
    # A path longer than a terminal line must still come out whole on the last line.
    out_dir = tmp_path / ("a-rather-long-folder-name-" * 4)
    result = cli("task", "build", spec, "--out", out_dir)
    assert result.exit_code == 0, result.output
    second = Path(last_line(result.stdout))
    assert second == out_dir / SMALL_SPEC["id"]
    assert tree_digest(second) == tree_digest(first)


@pytest.mark.slow
def test_task_build_with_unknown_kind(tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", kind="model-stealing")
    proc = run_main("task", "build", spec, "--data-dir", tmp_path / "data", cwd=tmp_path)
    assert_clean_error(proc, "field 'kind'", "model-stealing", "membership-inference")
    assert not (tmp_path / "data" / "tasks" / SMALL_SPEC["id"]).exists()


def test_task_build_with_a_bad_field(trustlab_main: Any, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", public_fraction=1.5, colour="red")
    proc = trustlab_main("task", "build", spec, "--data-dir", tmp_path / "data")
    assert_clean_error(proc, "field 'public_fraction'", "field 'colour'", str(spec))


def test_task_build_of_a_missing_spec(trustlab_main: Any, tmp_path: Path) -> None:
    proc = trustlab_main("task", "build", tmp_path / "nope.yaml")
    assert_clean_error(proc, "does not exist")


def _good_csv(task_dir: Path, path: Path) -> Path:
    ids = np.load(task_dir / "public" / "candidates.npz")["ids"]
    rng = np.random.default_rng(0)
    lines = ["id,score"] + [f"{i},{s:.4f}" for i, s in zip(ids, rng.random(len(ids)), strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_task_validate_and_score_a_good_file(built_task: tuple[Path, Any], tmp_path: Path) -> None:
    data_dir, _ = built_task
    task_dir = data_dir / "tasks" / SMALL_SPEC["id"]
    good = _good_csv(task_dir, tmp_path / "good.csv")

    result = cli("task", "validate", task_dir, good)
    assert result.exit_code == 0, result.output
    assert "valid" in result.stderr
    assert f'"rows": {SMALL_SPEC["params"]["n_candidates"]}' in result.stderr

    result = cli("task", "score", task_dir, good)
    assert result.exit_code == 0, result.output
    scored = yaml.safe_load(result.stdout)  # JSON is YAML
    assert 0.0 <= scored["public_score"] <= 1.0
    assert 0.0 <= scored["private_score"] <= 1.0
    assert {"tpr@0.05", "tpr@0.01", "auc"} <= set(scored["public_metrics"])


def test_task_validate_and_score_a_bad_file(
    trustlab_main: Any, built_task: tuple[Path, Any], tmp_path: Path
) -> None:
    data_dir, _ = built_task
    task_dir = data_dir / "tasks" / SMALL_SPEC["id"]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,score\n0,0.5\n1,high\n")
    for command in ("validate", "score"):
        proc = trustlab_main("task", command, task_dir, bad)
        assert_clean_error(proc, "Line 3", "'high'", "not a number")
        assert proc.stdout.strip() == ""


def test_task_validate_against_a_folder_that_is_not_a_task(
    trustlab_main: Any, tmp_path: Path
) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("id,score\n")
    proc = trustlab_main("task", "validate", tmp_path, csv)
    assert_clean_error(proc, "is not a built task")


# -- task new -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind", ["membership-inference", "robustness", "model-extraction", "membership-defence"]
)
def test_task_new_scaffolds_a_valid_spec_with_the_own_file_fields(
    trustlab_main: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    monkeypatch.chdir(tmp_path)
    proc = trustlab_main("task", "new", kind, "week-3")
    assert proc.returncode == 0, proc.stderr
    assert last_line(proc.stdout) == "week-3.yaml"
    text = (tmp_path / "week-3.yaml").read_text()
    assert "# data_file: " in text
    assert ("# model_file: " in text) == (kind != "membership-defence")
    spec = load_spec(tmp_path / "week-3.yaml")
    assert (spec.id, spec.kind) == ("week-3", kind)
    # Uncommenting the data file gives a spec that still validates.
    own = text.replace("# data_file: my", "data_file: my")
    assert parse_spec(yaml.safe_load(own)).params["data_file"].startswith("my")


def test_task_new_refuses_to_overwrite_and_bad_names(trustlab_main: Any, tmp_path: Path) -> None:
    target = tmp_path / "spec.yaml"
    target.write_text("mine\n")
    assert_clean_error(
        trustlab_main("task", "new", "robustness", "week-3", "--out", target), "--force"
    )
    assert target.read_text() == "mine\n"
    assert trustlab_main("task", "new", "robustness", "x", "--out", target).returncode == 1
    assert_clean_error(
        trustlab_main("task", "new", "stealing", "week-3", "--out", target), "model-extraction"
    )
    proc = trustlab_main("task", "new", "robustness", "week-3", "--out", target, "--force")
    assert proc.returncode == 0 and load_spec(target).id == "week-3"


@pytest.mark.slow
def test_task_build_reads_own_files_next_to_the_spec(
    trustlab_main: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from trustlab.core.data import load_dataset, save_npz

    folder = tmp_path / "course"
    folder.mkdir()
    data = load_dataset("digits")
    save_npz(folder / "mine.npz", x=np.asarray(data.x[:400]), y=np.asarray(data.y[:400]))
    spec = write_spec(folder / "spec.yaml")
    changed = yaml.safe_load(spec.read_text())
    changed["params"]["data_file"] = "mine.npz"
    spec.write_text(yaml.safe_dump(changed))
    monkeypatch.chdir(tmp_path)
    proc = trustlab_main("task", "build", "course/spec.yaml", "--out", "built")
    assert proc.returncode == 0, proc.stderr
    candidates = np.load(tmp_path / "built" / SMALL_SPEC["id"] / "public" / "candidates.npz")
    assert len(candidates["x"]) == SMALL_SPEC["params"]["n_candidates"]


# -- usage errors -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        ((), ("Missing command", "submit", "task", "--help")),
        (("task",), ("Missing command", "build", "validate", "new")),
        (("sbumit", "x"), ("No such command 'sbumit'", "submit")),
        (("submit",), ("Missing argument", "task_id")),
        (("submit", "mia-digits", "missing.csv"), ("missing.csv", "does not exist")),
        (("submit", "mia-digits", "scores.csv", "--field", "model_name"), ("NAME=VALUE",)),
        (("task", "validate", ".", "scores.csv", "--field", "=x"), ("NAME=VALUE",)),
        (("version", "--colour"), ("No such option: --colour",)),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    trustlab_main: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    needles: tuple[str, ...],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "scores.csv").write_text("id,score\n")
    assert_usage_error(trustlab_main(*args), *needles)


@pytest.mark.slow
def test_a_usage_error_through_python_m(tmp_path: Path) -> None:
    assert_usage_error(run_main("sbumit", cwd=tmp_path), "No such command")


# -- demo -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_builds_once_and_keys_the_demo_team_each_run(
    trustlab_main: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    first = trustlab_main("demo", "--no-serve", "--data-dir", data_dir)
    assert first.returncode == 0, first.stderr
    assert "Traceback" not in first.stderr
    assert (data_dir / "tasks" / "mia-digits" / "manifest.json").is_file()
    export = last_line(first.stdout)
    assert export.startswith("export ")
    assert "TRUSTLAB_API_KEY=tl_" in export
    first_key = export.split("TRUSTLAB_API_KEY=", 1)[1].split()[0]

    second = trustlab_main("demo", "--no-serve", "--data-dir", data_dir)
    assert second.returncode == 0, second.stderr
    assert "already built" in second.stderr
    second_key = last_line(second.stdout).split("TRUSTLAB_API_KEY=", 1)[1].split()[0]
    assert second_key.startswith("tl_")
    assert second_key != first_key
    assert authenticate(data_dir, second_key) == "demo"
    with pytest.raises(ApiError):
        authenticate(data_dir, first_key)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_second_demo_on_a_busy_port_says_so_before_touching_anything(
    trustlab_main: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = trustlab_main("demo", "--port", str(port), "--data-dir", data_dir)
    assert_clean_error(proc, "already running", f"http://127.0.0.1:{port}", "--port")
    assert not data_dir.exists()  # no task built, no database, no key rotated


def test_a_second_demo_on_the_same_data_folder_keeps_the_first_key(
    trustlab_main: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    port = _free_port()
    first = subprocess.Popen(["sleep", "60"])  # stands for the running demo's process
    try:
        (data_dir / "demo.pid").write_text(f"{first.pid} 127.0.0.1 {port}\n")
        for args in (("--port", str(port)), ("--no-serve",)):
            proc = trustlab_main("demo", *args, "--data-dir", data_dir)
            assert_clean_error(proc, "already running", str(first.pid), "key still works")
        assert sorted(p.name for p in data_dir.iterdir()) == ["demo.pid"]
    finally:
        first.kill()
        first.wait()


def test_a_stale_demo_pid_file_does_not_block(tmp_path: Path) -> None:
    from trustlab.cli.arena import running_demo

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    gone = subprocess.Popen(["true"])
    gone.wait()
    (data_dir / "demo.pid").write_text(f"{gone.pid} 127.0.0.1 8000\n")
    settings = Settings(data_dir=data_dir, port=_free_port())
    assert running_demo(settings, check_port=True) is None


def test_the_demo_banner_never_wraps_its_urls(
    trustlab_main: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.setattr("trustlab.cli.arena.prepare_demo", lambda settings: "tl_" + "k" * 40)
    proc = trustlab_main("demo", "--no-serve", "--data-dir", tmp_path / "data")
    assert proc.returncode == 0, proc.stderr
    url = "http://127.0.0.1:8000/api/v1/tasks/mia-digits/artifacts/sample_submission.csv"
    (curl,) = [line for line in proc.stderr.splitlines() if "curl" in line]
    assert curl.rstrip().endswith(f"-O {url}")
    assert last_line(proc.stdout) == (
        "export TRUSTLAB_URL=http://127.0.0.1:8000 TRUSTLAB_API_KEY=tl_" + "k" * 40
    )


def test_a_command_s_exit_code_reaches_the_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    """``typer.Exit(n)`` (e.g. ``trustlab submit`` of a submission that failed) exits with n."""
    import typer

    import trustlab.cli as cli

    app = typer.Typer()

    @app.command()
    def fail() -> None:
        raise typer.Exit(3)

    @app.command()
    def succeed() -> None:
        """Does nothing."""

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(sys, "argv", ["trustlab", "fail"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 3
    monkeypatch.setattr(sys, "argv", ["trustlab", "succeed"])
    cli.main()  # returns normally: exit code 0

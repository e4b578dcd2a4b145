"""The victim-query endpoint and the model-extraction task over HTTP (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from helpers import ArenaHarness, detail, install_task, start_harness
from hostile import write_hostile_state_dict
from specs import digits_spec
from sqlalchemy import select

from trustlab.client import ArenaClient, ArenaError
from trustlab.core.models import build_model
from trustlab.core.weights import save_model
from trustlab.extraction import Distillation, RemoteOracle
from trustlab.server.models import QueryAccount
from trustlab.tasks import build_task, open_task, parse_spec
from trustlab.tasks.extraction import QueryVictim

TASK = "steal-http"
BUDGET = 120

SPEC: dict[str, Any] = digits_spec(
    task_id=TASK,
    kind="model-extraction",
    title="Extraction over HTTP",
    max_file_size="2MB",
    seed=1,
    params={
        "n_train": 300,
        "n_eval": 100,
        "n_pool": 100,
        "epochs": 3,
        "query_budget": BUDGET,
        "max_batch": 16,
        "input_range": [0.0, 1.0],
        "architectures": [{"name": "digits-cnn"}],
        "bootstrap_resamples": 20,
    },
)


@pytest.fixture(scope="module")
def steal_task_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("steal-tasks")
    return build_task(parse_spec(SPEC), tasks_dir=root).paths.root


@pytest.fixture
def arena_factory(
    start_arena: Callable[[], ArenaHarness], steal_task_dir: Path, data_dir: Path
) -> Callable[..., ArenaHarness]:
    def factory(top: dict[str, Any] | None = None, **params: Any) -> ArenaHarness:
        install_task(steal_task_dir, data_dir, params_update=params, **(top or {}))
        return start_arena()

    return factory


def restart(harness: ArenaHarness) -> ArenaHarness:
    """The same arena (data folder and database) in a fresh app, as after a server restart."""
    keys = dict(harness.keys)
    harness.client.__exit__(None, None, None)
    fresh = start_harness(harness.settings, teams_=())()
    fresh.keys.update(keys)
    return fresh


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def pool(task_dir: Path, n: int, start: int = 0) -> np.ndarray:
    with np.load(task_dir / "public" / "pool.npz") as data:
        return np.asarray(data["x"][start : start + n])


def post_npy(harness: ArenaHarness, body: bytes, *, team: str = "alpha", task: str = TASK) -> Any:
    return harness.client.post(
        f"/api/v1/tasks/{task}/query",
        content=body,
        headers={**harness.headers(team), "Content-Type": "application/x-npy"},
    )


def post_json(harness: ArenaHarness, inputs: Any, *, team: str = "alpha") -> Any:
    return harness.client.post(
        f"/api/v1/tasks/{TASK}/query", json={"inputs": inputs}, headers=harness.headers(team)
    )


def remaining(harness: ArenaHarness, team: str = "alpha") -> int:
    response = harness.client.get(f"/api/v1/tasks/{TASK}/query", headers=harness.headers(team))
    assert response.status_code == 200, response.text
    return int(response.json()["queries_remaining"])


def account(harness: ArenaHarness, team: str = "alpha") -> QueryAccount | None:
    with harness.arena.sessions() as session:
        from trustlab.server.models import Team

        team_id = session.scalar(select(Team.id).where(Team.name == team))
        return session.scalar(
            select(QueryAccount).where(
                QueryAccount.task_id == TASK, QueryAccount.team_id == team_id
            )
        )


# -- answers ----------------------------------------------------------------------------------


def test_json_and_npy_queries_answer_from_the_victim(
    arena_factory: Callable[..., ArenaHarness], steal_task_dir: Path
) -> None:
    harness = arena_factory()
    x = pool(steal_task_dir, 5)
    built = open_task(steal_task_dir)
    expected = QueryVictim(
        spec=built.spec,
        paths=built.paths,
        params=built.kind.params_model.model_validate(built.spec.params),  # type: ignore[arg-type]
    ).answer(x, client_id="team-1")

    first = post_json(harness, x[:3].tolist())
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["queries_remaining"] == BUDGET - 3 and body["queries_used"] == 3
    assert first.headers["X-Queries-Remaining"] == str(BUDGET - 3)
    assert body["output"] == "probabilities" and body["n"] == 3
    np.testing.assert_allclose(np.array(body["outputs"]), expected.outputs[:3], atol=1e-6)

    second = harness.client.post(
        f"/api/v1/tasks/{TASK}/query",
        content=npy(x[3:]),
        headers={
            **harness.headers(),
            "Content-Type": "application/x-npy",
            "Accept": "application/x-npy",
        },
    )
    assert second.status_code == 200, second.text
    assert second.headers["content-type"] == "application/x-npy"
    assert second.headers["X-Queries-Remaining"] == str(BUDGET - 5)
    outputs = np.load(io.BytesIO(second.content), allow_pickle=False)
    np.testing.assert_allclose(outputs, expected.outputs[3:], atol=1e-6)

    status = harness.client.get(f"/api/v1/tasks/{TASK}/query", headers=harness.headers()).json()
    assert status["input_shape"] == [1, 8, 8] and status["output_dim"] == 10
    assert status["queries_used"] == 5 and status["max_batch"] == 16
    # Budgets are per team.
    assert remaining(harness, "beta") == BUDGET


class RecordingTransport(httpx.BaseTransport):
    """The test client's in-process transport, noting the status of every response."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.statuses: list[int] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        self.statuses.append(response.status_code)
        return response


def client_for(
    harness: ArenaHarness, team: str = "alpha", *, transport: httpx.BaseTransport | None = None
) -> ArenaClient:
    inner = harness.client._transport  # the test client's in-process transport
    return ArenaClient(
        "http://testserver", api_key=harness.keys[team], transport=transport or inner
    )


def test_the_client_splits_batches_and_waits_out_the_rate_limit(
    arena_factory: Callable[..., ArenaHarness], steal_task_dir: Path
) -> None:
    harness = arena_factory(rate_limit={"requests": 2, "window": "1s"})
    x = pool(steal_task_dir, 40)
    recording = RecordingTransport(harness.client._transport)
    with client_for(harness, transport=recording) as client:
        result = client.query(TASK, x)  # 16 + 16 + 8 rows: the third request waits
        # The third batch met the rate limit, waited it out and was sent again (the first
        # request reads the query format).
        assert recording.statuses[-4:] == [200, 200, 429, 200]
        assert recording.statuses.count(429) == 1
        assert result.outputs.shape == (40, 10) and result.remaining == BUDGET - 40
        single = client.query(TASK, x[20:21])
        np.testing.assert_allclose(single.outputs[0], result.outputs[20], atol=1e-6)
        with pytest.raises(ArenaError) as info:
            client.query(TASK, np.full((2, 1, 8, 8), 2.0))
        assert info.value.status_code == 400 and "Row 0" in info.value.detail
        with pytest.raises(ArenaError) as info:
            client.query(TASK, pool(steal_task_dir, 90))  # 90 > 79 left: nothing is sent
        assert info.value.status_code == 429 and "Nothing was sent" in info.value.detail
    assert remaining(harness) == BUDGET - 41


# -- refusals ---------------------------------------------------------------------------------


def test_bad_batches_are_400_and_cost_nothing(
    arena_factory: Callable[..., ArenaHarness], steal_task_dir: Path, tmp_path: Path
) -> None:
    harness = arena_factory()
    good = pool(steal_task_dir, 4)
    nan = good.copy()
    nan[2, 0, 3, 3] = np.nan
    high = good.copy()
    high[1, 0, 0, 0] = 1.5
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self) -> Any:
            import os

            return (os.system, (f"touch {marker}",))

    pickled = np.array([Exploit(), Exploit()], dtype=object)
    forged = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**9, 1, 8, 8)}
    np.lib.format.write_array_header_1_0(forged, header)
    forged.write(b"\0" * 256)
    cases = [
        (npy(good.reshape(4, 64)), "shape (4, 64)"),
        (npy(good.astype(bool)), "booleans"),
        (npy(nan), "Row 2 holds NaN"),
        (npy(high), "Row 1 holds the value 1.5"),
        (npy(np.zeros((17, 1, 8, 8), np.float32)), "at most 16 rows"),
        (npy(np.zeros((0, 1, 8, 8), np.float32)), "no rows"),
        (npy(pickled), "Python objects"),
        (forged.getvalue(), "announces 256000000000 data bytes, the body holds 256"),
        (b"\x93NUMPY garbage", "not a readable .npy"),
    ]
    for body, message in cases:
        response = post_npy(harness, body)
        assert response.status_code == 400, (message, response.text)
        assert message in detail(response), message
        assert response.headers["X-Queries-Remaining"] == str(BUDGET)
    assert not marker.exists()
    for payload, message in [
        ({"inputs": [[1, 2], [3]]}, "different lengths"),
        ({"rows": []}, "found ['rows']"),
        ({"inputs": "x"}, "not a list"),
    ]:
        response = harness.client.post(
            f"/api/v1/tasks/{TASK}/query", json=payload, headers=harness.headers()
        )
        assert response.status_code == 400 and message in detail(response), response.text
    text = harness.client.post(
        f"/api/v1/tasks/{TASK}/query",
        content=b"1,2,3",
        headers={**harness.headers(), "Content-Type": "text/csv"},
    )
    assert text.status_code == 400 and "Content-Type" in detail(text)
    huge = post_npy(harness, b"\0" * 200_000)
    assert huge.status_code == 413 and "at most 16 rows" in detail(huge)
    assert remaining(harness) == BUDGET
    assert account(harness) is None  # nothing was charged, nothing was even created


def test_keys_tasks_and_deadlines(
    arena_factory: Callable[..., ArenaHarness],
    steal_task_dir: Path,
    small_task_dir: Path,
    data_dir: Path,
) -> None:
    past = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    install_task(steal_task_dir, data_dir, id="steal-closed", deadline=past)
    install_task(small_task_dir, data_dir)
    harness = arena_factory()
    body = npy(pool(steal_task_dir, 2))
    url = f"/api/v1/tasks/{TASK}/query"
    assert harness.client.post(url, content=body).status_code == 401
    bad_key = harness.client.post(url, content=body, headers={"X-API-Key": "tl_000000000000_x"})
    assert bad_key.status_code == 401
    missing = post_npy(harness, body, task="no-such-task")
    assert missing.status_code == 404 and "GET /api/v1/tasks" in detail(missing)
    membership = post_npy(harness, body, task="mia-small")
    assert membership.status_code == 404 and "no victim to query" in detail(membership)
    closed = post_npy(harness, body, task="steal-closed")
    assert closed.status_code == 403 and "deadline" in detail(closed)


def test_the_budget_holds_and_a_refused_batch_costs_nothing(
    arena_factory: Callable[..., ArenaHarness], steal_task_dir: Path
) -> None:
    harness = arena_factory(query_budget=10)
    x = pool(steal_task_dir, 8)
    assert post_npy(harness, npy(x)).headers["X-Queries-Remaining"] == "2"
    short = post_npy(harness, npy(x[:3]))
    assert short.status_code == 429 and "only 2 of its 10" in detail(short)
    assert int(short.headers["Retry-After"]) >= 1 and short.headers["X-Queries-Remaining"] == "2"
    assert post_npy(harness, npy(x[:2])).headers["X-Queries-Remaining"] == "0"
    spent = post_npy(harness, npy(x[:1]))
    assert spent.status_code == 429 and "used all 10" in detail(spent)
    row = account(harness)
    assert row is not None and row.used == 10 and row.requests == 2


def test_concurrent_clients_never_exceed_the_budget(
    arena_factory: Callable[..., ArenaHarness], steal_task_dir: Path
) -> None:
    budget = 100
    harness = arena_factory(query_budget=budget, max_batch=16)
    body = npy(pool(steal_task_dir, 3))

    def client(_: int) -> tuple[int, int]:
        answered = refused = 0
        for _ in range(4):
            response = post_npy(harness, body)
            if response.status_code == 200:
                answered += len(np.asarray(response.json()["outputs"]))
            else:
                assert response.status_code == 429, response.text
                refused += 1
        return answered, refused

    with ThreadPoolExecutor(max_workers=32) as threads:
        results = list(threads.map(client, range(32)))
    answered = sum(a for a, _ in results)
    # 128 requests of 3 rows ask for 384 rows: exactly 33 requests (99 rows) fit in 100.
    assert answered == 99
    assert sum(r for _, r in results) == 128 - 33
    row = account(harness)
    assert row is not None and row.used == 99 and row.requests == 33


def test_the_rate_limit_is_429_with_retry_after_and_costs_nothing(
    arena_factory: Callable[..., ArenaHarness], steal_task_dir: Path
) -> None:
    harness = arena_factory(rate_limit={"requests": 2, "queries": 5, "window": "1h"})
    x = pool(steal_task_dir, 4)
    assert post_npy(harness, npy(x[:3])).status_code == 200
    rows = post_npy(harness, npy(x[:3]))
    assert rows.status_code == 429 and "at most 5 rows per 3600 s" in detail(rows)
    assert 3500 <= int(rows.headers["Retry-After"]) <= 3600
    assert post_npy(harness, npy(x[:2])).status_code == 200
    requests = post_npy(harness, npy(x[:1]))
    assert requests.status_code == 429 and "at most 2 requests" in detail(requests)
    assert "Retry-After" in requests.headers
    assert remaining(harness) == BUDGET - 5
    too_many = post_npy(harness, npy(pool(steal_task_dir, 6)))
    assert too_many.status_code == 400 and "at most 5 rows" in detail(too_many)


def test_a_failed_answer_gives_the_queries_back(
    arena_factory: Callable[..., ArenaHarness],
    steal_task_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness = arena_factory()
    assert post_npy(harness, npy(pool(steal_task_dir, 2))).status_code == 200

    def broken(self: QueryVictim, x: np.ndarray, *, client_id: str) -> Any:
        raise RuntimeError("the victim fell over")

    monkeypatch.setattr(QueryVictim, "answer", broken)
    client = TestClient(harness.client.app, raise_server_exceptions=False)
    failed = client.post(
        f"/api/v1/tasks/{TASK}/query",
        content=npy(pool(steal_task_dir, 4)),
        headers={**harness.headers(), "Content-Type": "application/x-npy"},
    )
    assert failed.status_code == 500 and "Internal server error" in detail(failed)
    row = account(harness)
    assert row is not None and row.used == 2 and row.requests == 1 and row.window_queries == 2


# -- the detector -----------------------------------------------------------------------------


def attack_batches(task_dir: Path, n: int, size: int = 16) -> list[np.ndarray]:
    """Tiny perturbations of one seed at many scales: the pattern PRADA catches."""
    rng = np.random.default_rng(0)
    seed = pool(task_dir, 1)
    batches = []
    for _ in range(n):
        scales = 10.0 ** rng.uniform(-4, -1, size=(size, 1, 1, 1))
        noisy = seed + scales * rng.standard_normal((size, 1, 8, 8))
        batches.append(np.clip(noisy, 0.0, 1.0).astype(np.float32))
    return batches


def test_a_flag_survives_a_restart_and_a_refusing_task_stops_answering(
    arena_factory: Callable[..., ArenaHarness], steal_task_dir: Path
) -> None:
    detector = {"name": "prada", "threshold": 0.9, "min_queries": 20, "action": "refuse"}
    harness = arena_factory(detector=detector)
    batches = attack_batches(steal_task_dir, 4)
    assert post_npy(harness, npy(batches[0])).status_code == 200
    flagged = post_npy(harness, npy(batches[1]))
    assert flagged.status_code == 403 and "flag" in detail(flagged)
    assert flagged.headers["X-Queries-Remaining"] == str(BUDGET - 16)
    row = account(harness)
    assert row is not None and row.flagged_at is not None and "Shapiro-Wilk" in str(row.flag_reason)
    assert row.used == 16 and row.detector_state is not None
    assert row.detector_state["n_queries"] == 32

    harness = restart(harness)
    again = post_npy(harness, npy(batches[2]))
    assert again.status_code == 403 and "flagged" in detail(again)
    assert remaining(harness) == BUDGET - 16
    # Another team's natural queries are answered.
    natural = post_npy(harness, npy(pool(steal_task_dir, 16, start=20)), team="beta")
    assert natural.status_code == 200


def test_detector_state_is_kept_per_team_across_restarts(
    arena_factory: Callable[..., ArenaHarness], steal_task_dir: Path
) -> None:
    detector = {"name": "prada", "threshold": 0.9, "min_queries": 20, "action": "flag"}
    harness = arena_factory(detector=detector)
    batches = attack_batches(steal_task_dir, 3)
    assert post_npy(harness, npy(batches[0])).status_code == 200
    harness = restart(harness)
    for batch in batches[1:]:
        assert post_npy(harness, npy(batch)).status_code == 200  # flagged, still answered
    row = account(harness)
    assert row is not None and row.detector_state is not None
    assert row.detector_state["n_queries"] == 48 and row.flagged_at is not None


# -- submissions ------------------------------------------------------------------------------


def test_steal_through_the_api_then_weights_and_onnx_score_the_same(
    arena_factory: Callable[..., ArenaHarness], steal_task_dir: Path, tmp_path: Path
) -> None:
    harness = arena_factory()
    with client_for(harness) as client:
        oracle = RemoteOracle(client=client, task_id=TASK)
        torch.manual_seed(0)
        attack = Distillation(query_x=pool(steal_task_dir, 48), epochs=15, seed=0)
        stolen = attack.extract(oracle=oracle, surrogate=build_model("digits-cnn"), budget=48)
    assert stolen.queries_used == 48 and oracle.queries_remaining == BUDGET - 48
    assert remaining(harness) == BUDGET - 48
    model = stolen.model.eval()
    save_model(model, tmp_path / "stolen.safetensors")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.eval(),
            (torch.zeros(2, 1, 8, 8),),
            str(tmp_path / "stolen.onnx"),
            dynamo=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
        )
    ids = []
    for name, model_name in (("stolen.safetensors", "digits-cnn"), ("stolen.onnx", "onnx")):
        response = harness.submit(
            TASK, (tmp_path / name).read_bytes(), filename=name, data={"model_name": model_name}
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["submission_id"])
    marker = tmp_path / "pwned"
    evil = write_hostile_state_dict(tmp_path / "evil.pt", model=model, marker=marker)
    refused = harness.submit(
        TASK, evil.read_bytes(), filename="evil.pt", data={"model_name": "digits-cnn"}
    )
    assert refused.status_code == 400 and "Refused to load" in detail(refused)
    no_name = harness.submit(TASK, (tmp_path / "stolen.onnx").read_bytes(), filename="s.onnx")
    assert no_name.status_code == 422 and "model_name" in detail(no_name)
    assert not marker.exists()

    assert harness.score_all() == 2
    infos = [
        harness.client.get(f"/api/v1/submissions/{i}", headers=harness.headers()).json()
        for i in ids
    ]
    assert [info["status"] for info in infos] == ["scored", "scored"], infos
    assert 0.2 < infos[0]["public_score"] < 1.0
    assert infos[0]["public_score"] == infos[1]["public_score"]
    assert infos[0]["metrics"] == infos[1]["metrics"]
    board = harness.client.get(f"/api/v1/tasks/{TASK}/leaderboard").json()
    assert board["metric"] == "agreement" and board["entries"][0]["team"] == "alpha"
    names = {a["name"] for a in harness.client.get(f"/api/v1/tasks/{TASK}").json()["artifacts"]}
    assert "victim.safetensors" not in names and "query.json" in names
    hidden = harness.client.get(
        f"/api/v1/tasks/{TASK}/artifacts/victim.safetensors", headers=harness.headers()
    )
    assert hidden.status_code == 404

"""The OpenAPI schema matches every response: the error shape, the multipart body of
``/submit``, and a bounded schemathesis run against a live server (zero server errors, zero
mismatches). Also: security headers on every kind of response."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import ArenaHarness, ThreadedServer, install_task, random_csv

from trustlab.server.middleware import CSP_API, CSP_DOCS, CSP_PAGE

TASK = "mia-small"
ERROR_REF = {"$ref": "#/components/schemas/ErrorDetail"}


def _operations(schema: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def test_every_error_response_is_documented_as_a_detail_string(harness: ArenaHarness) -> None:
    schema = harness.client.get("/openapi.json").json()
    assert schema["components"]["schemas"]["ErrorDetail"]["properties"]["detail"]["type"] == (
        "string"
    )
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    for method, path, operation in _operations(schema):
        responses = operation["responses"]
        for code in ("422", "503"):
            assert code in responses, (method, path, code)
        for code, response in responses.items():
            if int(code) >= 400:
                assert response["content"]["application/json"]["schema"] == ERROR_REF
                if code in ("429", "503"):
                    assert "Retry-After" in response["headers"]
    submit = schema["paths"]["/submit/{task_id}"]["post"]
    assert {"400", "401", "403", "404", "408", "411", "413", "429"} <= set(submit["responses"])
    body = submit["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["file"] and body["properties"]["file"]["format"] == "binary"


def test_a_422_detail_is_a_string(harness: ArenaHarness) -> None:
    app: Any = harness.client.app

    @app.get("/_probe/{number}")
    def probe(number: int) -> dict[str, int]:  # a route with a parameter FastAPI validates
        return {"number": number}

    response = harness.client.get("/_probe/not-a-number")
    assert response.status_code == 422
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str)
    assert body["detail"].startswith("Invalid request: path.number: ")


def _assert_secured(response: Any, policy: str) -> None:
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Security-Policy"] == policy
    assert "frame-ancestors 'none'" in policy


def test_every_response_carries_the_security_headers(
    harness: ArenaHarness, small_task_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    get = harness.client.get
    key = harness.headers()
    for response in (
        get("/api/v1/tasks"),
        get(f"/api/v1/tasks/{TASK}"),
        get("/api/v1/tasks/nope"),
        get(f"/api/v1/tasks/{TASK}/artifacts/candidates.npz", headers=key),
        get(f"/api/v1/tasks/{TASK}/artifacts/candidates.npz"),
        get("/openapi.json"),
        get("/no/such/route"),
        harness.submit(TASK, random_csv(small_task_dir)),
        harness.submit(TASK, b""),
    ):
        _assert_secured(response, CSP_API)
    _assert_secured(get("/leaderboard_page"), CSP_PAGE)
    _assert_secured(get("/docs"), CSP_DOCS)

    def broken() -> list[Any]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(harness.arena, "tasks", broken)
    crashed = get("/api/v1/tasks")
    assert crashed.status_code == 500
    assert crashed.json() == {"detail": "Internal server error; the arena's log has the details."}
    _assert_secured(crashed, CSP_API)


@pytest.fixture
def live_schema_server(
    make_settings: Callable[..., Any], small_task_dir: Path, data_dir: Path
) -> Iterator[ThreadedServer]:
    install_task(small_task_dir, data_dir, cooldown={"accepted": 0, "failed": 0})
    with ThreadedServer(make_settings(intake_queue_seconds=30.0)) as server:
        server.add_team("alpha")
        yield server


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_schemathesis_finds_no_server_error_and_no_mismatch(
    live_schema_server: ThreadedServer, small_task_dir: Path
) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    import httpx
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    server = live_schema_server
    key = server.keys["alpha"]
    accepted = httpx.post(
        f"{server.url}/submit/{TASK}",
        headers={"X-API-Key": key},
        files={"file": ("s.csv", random_csv(small_task_dir).encode())},
        timeout=60,
    )
    assert accepted.status_code == 202
    real = {
        "task_id": TASK,
        "name": "candidates.npz",
        "submission_id": accepted.json()["submission_id"],
    }
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
    failures: list[str] = []
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        wanted = {p.name for p in operation.path_parameters}
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for steer in (False, True):
                kwargs: dict[str, Any] = {}
                if steer:  # real ids and a valid key, to get past 404 and 401
                    kwargs["path_parameters"] = {k: v for k, v in real.items() if k in wanted}
                    kwargs["headers"] = {"X-API-Key": key}
                strategy = operation.as_strategy(generation_mode=mode, **kwargs)

                try:
                    calls += _exercise(strategy, operation.label, checks, failures)
                except Unsatisfiable:  # nothing to make invalid (no parameters, no body)
                    assert mode is GenerationMode.NEGATIVE
    assert calls >= 100
    assert failures == [], "\n\n".join(failures[:5])


def _exercise(strategy: Any, label: str, checks: list[Any], failures: list[str]) -> int:
    """Send a bounded, reproducible set of generated requests; returns how many were sent.
    Every failed check is added to ``failures`` (all of them, not only the first)."""
    from hypothesis import HealthCheck, Phase, given, settings

    sent = 0

    @given(case=strategy)
    @settings(
        max_examples=15,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        nonlocal sent
        sent += 1
        try:
            case.call_and_validate(checks=checks, timeout=60)
        except Exception as exc:
            failures.append(f"{label}: {exc}")

    run()
    return sent

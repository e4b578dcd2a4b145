"""Model extraction on the demo task: fidelity against query budget, and the query endpoint's speed.

Part 1 builds the ``extraction-digits`` demo task (a digits CNN victim, an unlabeled public
pool, hidden evaluation digits) and runs every attack of :mod:`trustlab.extraction` against
the victim behind each output defence, at several query budgets. Fidelity is the label
agreement between the copy (a fresh ``digits-cnn``) and the undefended victim on the task's
hidden inputs, the arena's own metric.

Part 2 serves the same task from a real server process (uvicorn on loopback, SQLite, no
access log) and measures ``POST /api/v1/tasks/{task_id}/query`` with 1, 8 and 32 concurrent
clients (one team each, 64-row ``.npy`` batches): answered rows per second and the median and
99th-percentile latency per request, beside the victim's bare batched inference in one
process, as a ratio.

Run: ``.venv/bin/python benchmarks/extraction.py [--quick] [--part fidelity|endpoint|all]``.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
import yaml

from trustlab.core.models import build_model
from trustlab.core.training import predict_logits
from trustlab.core.weights import load_model
from trustlab.extraction import (
    ActiveThief,
    Distillation,
    JacobianAugmentation,
    KnockoffNets,
    LocalOracle,
    label_agreement,
)
from trustlab.extraction.defences import AdditiveNoise, ReverseSigmoid, Rounding, TopK
from trustlab.server.db import make_engine, make_sessionmaker, upgrade, write_session
from trustlab.server.services import teams
from trustlab.tasks import build_task, load_spec, parse_spec

TASK = "extraction-digits"
ROWS_PER_REQUEST = 64


def demo_spec_data() -> dict[str, Any]:
    path = Path(str(resources.files("trustlab.tasks") / "specs" / f"{TASK}.yaml"))
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def build_demo(root: Path) -> Path:
    spec = load_spec(Path(str(resources.files("trustlab.tasks") / "specs" / f"{TASK}.yaml")))
    return build_task(spec, tasks_dir=root).paths.root


# -- part 1: fidelity against budget ----------------------------------------------------------

DEFENCES: dict[str, Callable[[], Any]] = {
    "none": lambda: None,
    "rounding(1)": lambda: Rounding(decimals=1),
    "top-1": lambda: TopK(k=1),
    "noise(0.1)": lambda: AdditiveNoise(scale=0.1, seed=0),
    "reverse-sigmoid": lambda: ReverseSigmoid(beta=1.0, gamma=0.5),
}


def attacks(pool: np.ndarray, budget: int, epochs: int) -> dict[str, Any]:
    return {
        "knockoff-random": KnockoffNets(sampling="random", pool=pool, epochs=epochs, seed=0),
        "activethief-uncertainty": ActiveThief(
            strategy="uncertainty", pool=pool, epochs=max(5, epochs // 3), seed=0
        ),
        "jacobian": JacobianAugmentation(seed_x=pool[:20], epochs=10, seed=0),
        "distillation": Distillation(query_x=pool[:budget], epochs=epochs, seed=0),
    }


def fidelity_table(task_dir: Path, *, budgets: list[int], defences: list[str], epochs: int) -> None:
    victim = load_model(task_dir / "hidden" / "victim.safetensors")
    with np.load(task_dir / "public" / "pool.npz") as data:
        pool = np.asarray(data["x"])
    with np.load(task_dir / "hidden" / "answers.npz") as answers:
        eval_x = np.asarray(answers["x"])
        eval_labels = np.asarray(answers["victim_labels"])
    print(f"\nPart 1: label agreement with the victim on {len(eval_x)} hidden digits")
    print(f"(pool of {len(pool)} unlabeled digits; copy: digits-cnn; {epochs} epochs)\n")
    header = f"{'attack':<26}{'defence':<17}" + "".join(f"{b:>8}" for b in budgets) + "   seconds"
    print(header)
    print("-" * len(header))
    for name in attacks(pool, budgets[0], epochs):
        for defence_name in defences:
            cells, started = [], time.perf_counter()
            for budget in budgets:
                attack = attacks(pool, budget, epochs)[name]
                oracle = LocalOracle(
                    model=victim,
                    output="probabilities",
                    defence=DEFENCES[defence_name](),
                    budget=budget,
                    client_id="bench",
                )
                torch.manual_seed(0)
                copy = build_model("digits-cnn")
                result = attack.extract(oracle=oracle, surrogate=copy, budget=budget)
                copy_logits = predict_logits(result.model, eval_x)
                agreement = label_agreement(y_true=eval_labels, y_pred=copy_logits)
                cells.append(f"{agreement:8.3f}")
            seconds = time.perf_counter() - started
            print(f"{name:<26}{defence_name:<17}" + "".join(cells) + f"{seconds:10.1f}", flush=True)


# -- part 2: the endpoint ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVER = """
import sys, uvicorn
from trustlab.server.app import create_app
from trustlab.server.settings import Settings
settings = Settings(data_dir=sys.argv[1], workers=0)
uvicorn.run(create_app(settings), host="127.0.0.1", port=int(sys.argv[2]),
            log_level="warning", access_log=False)
"""


def install_variant(task_dir: Path, data_dir: Path, *, detector: bool) -> None:
    """The demo task with an unlimited budget and no rate limit (with or without PRADA)."""
    spec = yaml.safe_load((task_dir / "spec.yaml").read_text())
    spec["params"]["query_budget"] = 10**9
    spec["params"]["rate_limit"] = {"requests": None, "queries": None, "window": 60}
    if not detector:
        spec["params"]["detector"] = None
    parse_spec(spec)
    target = data_dir / "tasks" / TASK
    shutil.copytree(task_dir, target)
    (target / "spec.yaml").write_text(yaml.safe_dump(spec, sort_keys=True))


def make_keys(data_dir: Path, n: int) -> list[str]:
    engine = make_engine(f"sqlite:///{(data_dir / 'arena.db').resolve()}")
    upgrade(engine)
    keys = []
    with write_session(make_sessionmaker(engine)) as session:
        for i in range(n):
            _, key = teams.create_team(session, name=f"bench{i}")
            keys.append(key)
    engine.dispose()
    return keys


def bare_inference(task_dir: Path, x: np.ndarray, seconds: float) -> float:
    """Rows per second of the victim alone on 64-row batches, in this process, no server."""
    victim = load_model(task_dir / "hidden" / "victim.safetensors")
    batch = torch.from_numpy(x[:ROWS_PER_REQUEST])
    rows, started = 0, time.perf_counter()
    with torch.no_grad():
        while time.perf_counter() - started < seconds:
            torch.softmax(victim(batch), dim=1)
            rows += len(batch)
    return rows / (time.perf_counter() - started)


def load_test(url: str, keys: list[str], body: bytes, *, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.perf_counter() + seconds

    def client(key: str) -> int:
        answered = 0
        headers = {
            "X-API-Key": key,
            "Content-Type": "application/x-npy",
            "Accept": "application/x-npy",
        }
        with httpx.Client(timeout=120) as http:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                response = http.post(
                    f"{url}/api/v1/tasks/{TASK}/query", content=body, headers=headers
                )
                elapsed = time.perf_counter() - started
                if response.status_code != 200:
                    raise RuntimeError(response.text)
                answered += ROWS_PER_REQUEST
                with lock:
                    latencies.append(elapsed)
        return answered

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(keys)) as pool:
        rows = sum(pool.map(client, keys))
    wall = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "rows_per_s": rows / wall,
        "requests_per_s": len(latencies) / wall,
        "median_ms": 1000 * statistics.median(ordered),
        "p99_ms": 1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
    }


def endpoint_table(task_dir: Path, *, clients: list[int], seconds: float) -> None:
    with np.load(task_dir / "public" / "pool.npz") as data:
        x = np.asarray(data["x"][:ROWS_PER_REQUEST], dtype=np.float32)
    buffer = io.BytesIO()
    np.save(buffer, x, allow_pickle=False)
    body = buffer.getvalue()
    torch.set_num_threads(1)
    bare = bare_inference(task_dir, x, seconds)
    print(
        f"\nPart 2: POST /api/v1/tasks/{TASK}/query, {ROWS_PER_REQUEST}-row .npy batches, "
        f"{seconds:g} s per row"
    )
    print(f"victim alone (one thread, same batches): {bare:,.0f} rows/s\n")
    header = (
        f"{'configuration':<28}{'clients':>8}{'req/s':>9}{'rows/s':>10}"
        f"{'median ms':>11}{'p99 ms':>9}{'ratio':>8}"
    )
    print(header)
    print("-" * len(header))
    for label, detector in (("probabilities + rounding", False), ("... + PRADA (flag)", True)):
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = Path(tmp) / "data"
            (data_dir / "tasks").mkdir(parents=True)
            install_variant(task_dir, data_dir, detector=detector)
            keys = make_keys(data_dir, max(clients))
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            server = subprocess.Popen(
                [sys.executable, "-c", SERVER, str(data_dir), str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("the server did not start")
                    time.sleep(0.2)
                load_test(url, keys[:1], body, seconds=1.0)  # warm-up: loads the victim
                for n in clients:
                    result = load_test(url, keys[:n], body, seconds=seconds)
                    print(
                        f"{label:<28}{n:>8}{result['requests_per_s']:>9.1f}"
                        f"{result['rows_per_s']:>10,.0f}{result['median_ms']:>11.1f}"
                        f"{result['p99_ms']:>9.1f}{result['rows_per_s'] / bare:>8.3f}",
                        flush=True,
                    )
            finally:
                server.terminate()
                server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer budgets, defences, seconds")
    parser.add_argument("--part", choices=["fidelity", "endpoint", "all"], default="all")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, one torch thread")
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        task_dir = build_demo(Path(tmp))
        print(f"built the demo task {TASK} in {time.perf_counter() - started:.1f} s")
        if args.part in ("fidelity", "all"):
            budgets = [100, 400] if args.quick else [100, 200, 400]
            defences = ["none", "rounding(1)", "top-1"] if args.quick else list(DEFENCES)
            fidelity_table(task_dir, budgets=budgets, defences=defences, epochs=30)
        if args.part in ("endpoint", "all"):
            clients = [1, 8, 32]
            endpoint_table(task_dir, clients=clients, seconds=3.0 if args.quick else 10.0)


if __name__ == "__main__":
    main()

"""LiRA and RMIA on the demo membership-inference task, from download to score.

Both attacks compare the target with *reference models* trained like it, through trustlab's
public API (:class:`trustlab.privacy.ReferenceModels`, :class:`~trustlab.privacy.LiRA`,
:class:`~trustlab.privacy.RMIA`):

* **LiRA online** (Carlini et al., 2022): reference models are trained on random halves of the
  candidates themselves, so every candidate is IN half of them and OUT of the other half; the
  score is the likelihood ratio of the target's logit-scaled confidence under the IN and OUT
  Gaussians. ``candidate_index`` tells the attack which reference models saw each candidate.
* **RMIA offline** (Zarifzadeh et al., 2024): two reference models trained on halves of 500
  population examples (250 each, the target's training-set size); the remaining population
  examples are the samples ``z`` each candidate's likelihood ratio is compared with.

The task's README gives the target's recipe, which the reference models copy: ``digits-cnn``,
Adam with learning rate 1e-3, batch size 32, 60 epochs.

Run the demo arena first (``make demo``), then::

    export TRUSTLAB_URL=http://127.0.0.1:8000 TRUSTLAB_API_KEY=...   # printed by the demo
    python examples/membership_lira_rmia.py

or, without a server, on a task folder built with ``trustlab task build``::

    python examples/membership_lira_rmia.py --task-dir data/tasks/mia-digits
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

import trustlab
from trustlab.cli._progress import progress_bar
from trustlab.client import ArenaClient
from trustlab.core.weights import read_architecture
from trustlab.privacy import RMIA, LiRA, ReferenceModels

#: The target's training recipe, from the task's README.
RECIPE = {"epochs": 60, "lr": 1e-3, "batch_size": 32}
#: Population examples the RMIA reference models train on (two halves of 250).
RMIA_REFERENCE_ROWS = 500


def attack(public: Path, *, n_models: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    """LiRA (online) and RMIA (offline) scores of every candidate, keyed ``lira`` and ``rmia``."""
    target_file = public / "target.safetensors"
    target = trustlab.load_model(target_file)
    architecture, arguments = read_architecture(target_file)
    with np.load(public / "candidates.npz") as data:
        ids, x, y = data["ids"], data["x"], data["y"]
    with np.load(public / "population.npz") as data:
        population_x, population_y = data["x"], data["y"]

    with progress_bar("LiRA reference models") as progress:
        online = ReferenceModels.train(
            architecture=architecture,
            arguments=arguments,
            x=x,
            y=y,
            n_models=n_models,
            seed=seed,
            progress=progress,
            **RECIPE,
        )
    lira = LiRA(reference=online, online=True, fixed_variance=True)
    lira_scores = lira.infer(model=target, x=x, y=y, candidate_index=np.arange(len(x)))

    with progress_bar("RMIA reference models") as progress:
        offline = ReferenceModels.train(
            architecture=architecture,
            arguments=arguments,
            x=population_x[:RMIA_REFERENCE_ROWS],
            y=population_y[:RMIA_REFERENCE_ROWS],
            n_models=2,
            seed=seed + 1,
            progress=progress,
            **RECIPE,
        )
    rmia = RMIA(
        reference=offline,
        population_x=population_x[RMIA_REFERENCE_ROWS:],
        population_y=population_y[RMIA_REFERENCE_ROWS:],
    )
    rmia_scores = rmia.infer(model=target, x=x, y=y)
    return {"ids": ids, "lira": lira_scores, "rmia": rmia_scores}


def write_csv(path: Path, ids: np.ndarray, scores: np.ndarray) -> None:
    lines = ["id,score"] + [f"{int(i)},{float(s)!r}" for i, s in zip(ids, scores, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def score_locally(task_dir: Path, scores: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Score each attack's CSV with the task's own scorer, as the arena would."""
    from trustlab.tasks import open_task

    task = open_task(task_dir)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("lira", "rmia"):
            csv = Path(tmp) / f"{name}.csv"
            write_csv(csv, scores["ids"], scores[name])
            result = task.kind.score(task.spec, paths=task.paths, file=csv, fields={})
            results[name] = {
                f"{part} {metric}": float(metrics[metric])
                for part, metrics in (
                    ("public", result.public_metrics),
                    ("private", result.private_metrics),
                )
                for metric in ("tpr@0.01", "tpr@0.05", "auc")
            }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("TRUSTLAB_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("TRUSTLAB_API_KEY"))
    parser.add_argument("--task", default="mia-digits")
    parser.add_argument("--task-dir", type=Path, help="a built task folder: score locally")
    parser.add_argument("--reference-models", type=int, default=8)
    args = parser.parse_args()

    if args.task_dir is not None:
        scores = attack(args.task_dir / "public", n_models=args.reference_models)
        for name, metrics in score_locally(args.task_dir, scores).items():
            print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()))
        return
    if not args.key:
        parser.error("set TRUSTLAB_API_KEY (printed by `trustlab demo`) or pass --key")
    with ArenaClient(args.url, api_key=args.key) as client, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        client.download_all(args.task, folder)
        scores = attack(folder, n_models=args.reference_models)
        for name in ("lira", "rmia"):
            csv = folder / f"{name}.csv"
            write_csv(csv, scores["ids"], scores[name])
            info = client.wait(client.submit(args.task, csv).submission_id)
            print(f"{name}: {info.status.value}, public {info.public_score:.3f}, {info.metrics}")


if __name__ == "__main__":
    main()

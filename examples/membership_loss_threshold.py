"""A loss-threshold membership-inference attack on the demo task, from download to score.

Two variants, both written with trustlab's public API:

* **plain** (Yeom et al., 2018): score = -loss of the target on the candidate. Members were
  fitted, so their loss tends to be lower.
* **calibrated** (Watson et al., 2022, "On the importance of difficulty calibration in
  membership inference attacks"): the same loss, compared with the loss that *reference models*
  trained without the candidate give it. An easy digit has a low loss whether or not it was a
  member; calibration asks whether the target's loss is lower than expected *for this example*.
  score = mean_r log loss_ref_r(x) - log loss_target(x).

The plain attack beats chance on AUC but is weak at low false-positive rates, as Carlini et al.
(2022) explain; calibration is what lifts the TPR at 5% FPR well above the 0.05 of random
guessing. The script checks both on the task's labelled calibration set, submits the better
one and prints the arena's score.

Run the demo arena first (``make demo``), then::

    export TRUSTLAB_URL=http://127.0.0.1:8000 TRUSTLAB_API_KEY=...   # printed by the demo
    python examples/membership_loss_threshold.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

import trustlab
from trustlab.cli._progress import progress_bar
from trustlab.client import ArenaClient
from trustlab.core.metrics import auc, tpr_at_fpr
from trustlab.core.models import build_model
from trustlab.core.progress import report
from trustlab.core.training import fit_classifier, seed_everything
from trustlab.core.weights import read_architecture
from trustlab.privacy import LossThresholdAttack


def plain_scores(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Yeom et al.: the negative cross-entropy loss of the target."""
    return LossThresholdAttack().infer(model=model, x=x, y=y)


def _log_loss(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    loss = -LossThresholdAttack().infer(model=model, x=x, y=y)
    return np.log(np.maximum(loss, 1e-300))


def reference_models(
    *,
    target_file: Path,
    population_x: np.ndarray,
    population_y: np.ndarray,
    n_models: int,
    n_train: int,
    epochs: int,
    lr: float,
    batch_size: int,
) -> list[torch.nn.Module]:
    """Models of the target's architecture, trained like it on data it never saw."""
    name, arguments = read_architecture(target_file)
    models = []
    with progress_bar("reference models") as progress:
        for r in range(n_models):
            rng = np.random.default_rng(1000 + r)
            size = min(n_train, len(population_x))
            subset = rng.choice(len(population_x), size=size, replace=False)
            seed_everything(1000 + r)
            model = build_model(name, arguments=arguments)
            fit_classifier(
                model,
                population_x[subset],
                population_y[subset],
                epochs=epochs,
                lr=lr,
                batch_size=batch_size,
                seed=1000 + r,
                progress=progress,
            )
            models.append(model.eval())
            report(progress, stage="models", done=r + 1, total=n_models)
    return models


def calibrated_scores(
    target: torch.nn.Module, refs: list[torch.nn.Module], x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """Watson et al.: how much lower the target's loss is than the reference models'."""
    expected = np.mean([_log_loss(ref, x, y) for ref in refs], axis=0)
    return expected - _log_loss(target, x, y)


def attack(task_dir: Path, *, n_models: int = 8) -> dict[str, np.ndarray]:
    """Both attacks' scores on the candidates, and their quality on the calibration set."""
    target_file = task_dir / "target.safetensors"
    target = trustlab.load_model(target_file)
    cand = np.load(task_dir / "candidates.npz")
    cal = np.load(task_dir / "calibration.npz")
    pop = np.load(task_dir / "population.npz")
    # The task's README gives the training recipe: 250 members, Adam 1e-3, batch 32, 60 epochs.
    refs = reference_models(
        target_file=target_file,
        population_x=pop["x"],
        population_y=pop["y"],
        n_models=n_models,
        n_train=250,
        epochs=60,
        lr=1e-3,
        batch_size=32,
    )
    out = {"ids": cand["ids"]}
    for name, fn in (
        ("plain", lambda x, y: plain_scores(target, x, y)),
        ("calibrated", lambda x, y: calibrated_scores(target, refs, x, y)),
    ):
        on_cal = fn(cal["x"], cal["y"])
        member = cal["member"].astype(np.int64)
        print(
            f"{name:>10}: calibration set TPR@5%FPR "
            f"{tpr_at_fpr(y_true=member, scores=on_cal, fpr=0.05):.3f}, "
            f"AUC {auc(y_true=member, scores=on_cal):.3f}"
        )
        out[name] = fn(cand["x"], cand["y"])
    return out


def write_csv(path: Path, ids: np.ndarray, scores: np.ndarray) -> None:
    lines = ["id,score"] + [f"{int(i)},{float(s)!r}" for i, s in zip(ids, scores, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("TRUSTLAB_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("TRUSTLAB_API_KEY"))
    parser.add_argument("--task", default="mia-digits")
    parser.add_argument("--variant", choices=["plain", "calibrated"], default="calibrated")
    parser.add_argument("--reference-models", type=int, default=8)
    args = parser.parse_args()
    if not args.key:
        parser.error("set TRUSTLAB_API_KEY (printed by `trustlab demo`) or pass --key")

    with ArenaClient(args.url, api_key=args.key) as client, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        client.download_all(args.task, folder)
        scores = attack(folder, n_models=args.reference_models)
        csv = folder / f"{args.variant}.csv"
        write_csv(csv, scores["ids"], scores[args.variant])
        receipt = client.submit(args.task, csv)
        info = client.wait(receipt.submission_id)
    print(f"submitted the {args.variant} attack: {info.status.value}")
    print(f"public TPR@5%FPR {info.public_score:.3f}; metrics {info.metrics}")


if __name__ == "__main__":
    main()

"""LAC, APS and RAPS prediction sets on the demo conformal task, from download to score.

Split conformal prediction with :mod:`trustlab.uncertainty`: the published model's softmax
probabilities on the labelled calibration split give each method's threshold (the
finite-sample quantile ``ceil((n + 1)(1 - alpha)) / n``); the sets on the test split then
contain the true label at least ``1 - alpha`` of the time. The task scores
``1 - mean set size / n_classes``, or zero if a part's coverage falls below
``1 - alpha - tolerance``.

The script checks each method's coverage on half of the calibration split (calibrated on the
other half), submits all three and prints the arena's scores beside the sample submission's
(sets of every class: always covers, scores 0).

Run the demo arena first (``make demo``), then::

    export TRUSTLAB_URL=http://127.0.0.1:8000 TRUSTLAB_API_KEY=...   # printed by the demo
    python examples/conformal_sets.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch

import trustlab
from trustlab.client import ArenaClient
from trustlab.core.training import predict_logits
from trustlab.uncertainty import APS, LAC, RAPS, ConformalClassifier, empirical_coverage


def methods(alpha: float) -> dict[str, ConformalClassifier]:
    return {
        "lac": LAC(alpha=alpha),
        "aps": APS(alpha=alpha),
        "raps": RAPS(alpha=alpha, lam=0.05, k_reg=1),
    }


def prediction_sets(task_dir: Path, *, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """The test ids and every method's sets (boolean matrices) on the test split."""
    model = trustlab.load_model(task_dir / "model.safetensors")
    cal, test = np.load(task_dir / "calibration.npz"), np.load(task_dir / "test.npz")

    def probs(x: np.ndarray) -> np.ndarray:
        return torch.softmax(predict_logits(model, x).double(), dim=1).numpy()

    p_cal, p_test, y_cal = probs(cal["x"]), probs(test["x"]), cal["y"]
    half = len(y_cal) // 2
    out: dict[str, np.ndarray] = {"ids": test["ids"]}
    for name, method in methods(alpha).items():
        check = method.fit(probs=p_cal[:half], y=y_cal[:half]).predict(probs=p_cal[half:])
        coverage = empirical_coverage(sets=check, y_true=y_cal[half:])
        print(f"{name:>5}: held-out coverage {coverage:.3f}, mean size {check.sum(1).mean():.2f}")
        out[name] = method.fit(probs=p_cal, y=y_cal).predict(probs=p_test)
    return out


def write_csv(path: Path, ids: np.ndarray, sets: np.ndarray) -> None:
    """Sets as class lists: ``id,labels`` with the labels separated by spaces."""
    rows = [
        f"{int(i)}," + " ".join(str(k) for k in np.flatnonzero(s))
        for i, s in zip(ids, sets, strict=True)
    ]
    path.write_text("\n".join(["id,labels", *rows]) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("TRUSTLAB_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("TRUSTLAB_API_KEY"))
    parser.add_argument("--task", default="conformal-digits")
    parser.add_argument("--alpha", type=float, default=0.05)
    args = parser.parse_args()
    if not args.key:
        parser.error("set TRUSTLAB_API_KEY (printed by `trustlab demo`) or pass --key")

    with ArenaClient(args.url, api_key=args.key) as client, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        client.download_all(args.task, folder)
        sets = prediction_sets(folder, alpha=args.alpha)
        files = {"sample (all)": folder / "sample_submission.csv"}
        for name in ("lac", "aps", "raps"):
            files[name] = folder / f"{name}.csv"
            write_csv(files[name], sets["ids"], sets[name])
        for name, csv in files.items():
            info = client.wait(client.submit(args.task, csv).submission_id)
            metrics = info.metrics or {}
            print(
                f"{name:>12}: {info.status.value}, public score {info.public_score:.3f}, "
                f"coverage {metrics.get('coverage', float('nan')):.3f}, "
                f"mean set size {metrics.get('mean_set_size', float('nan')):.2f}"
            )


if __name__ == "__main__":
    main()

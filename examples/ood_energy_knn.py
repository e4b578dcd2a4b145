"""Energy and kNN out-of-distribution scores on the demo OOD task, from download to score.

Two detectors from :mod:`trustlab.uncertainty`, both on one forward pass of the published
model (:func:`~trustlab.uncertainty.model_outputs` gives the logits and the penultimate
features together):

* **energy** (Liu et al., 2020): ``-logsumexp(logits)``; needs nothing but the model.
* **kNN** (Sun et al., 2022): distance from an input's normalised feature to its k-th nearest
  training feature; fitted on the published in-distribution training set.

The script submits both and prints the arena's scores beside the random sample submission's
(an AUROC near 0.5).

Run the demo arena first (``make demo``), then::

    export TRUSTLAB_URL=http://127.0.0.1:8000 TRUSTLAB_API_KEY=...   # printed by the demo
    python examples/ood_energy_knn.py
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

import trustlab
from trustlab.client import ArenaClient
from trustlab.uncertainty import KNN, Energy, model_outputs


def detect(task_dir: Path, *, k: int = 10) -> dict[str, np.ndarray]:
    """The test ids and the energy and kNN outlier scores of every test input."""
    model = trustlab.load_model(task_dir / "model.safetensors")
    train, test = np.load(task_dir / "train.npz"), np.load(task_dir / "test.npz")
    fit = model_outputs(model=model, x=train["x"])
    out = model_outputs(model=model, x=test["x"])
    knn = KNN(k=k).fit_outputs(features=fit.features)
    return {
        "ids": test["ids"],
        "energy": Energy().score_outputs(logits=out.logits),
        "knn": knn.score_outputs(features=out.features),
    }


def write_csv(path: Path, ids: np.ndarray, scores: np.ndarray) -> None:
    lines = ["id,score"] + [f"{int(i)},{float(s)!r}" for i, s in zip(ids, scores, strict=True)]
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", default=os.environ.get("TRUSTLAB_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("TRUSTLAB_API_KEY"))
    parser.add_argument("--task", default="ood-digits")
    args = parser.parse_args()
    if not args.key:
        parser.error("set TRUSTLAB_API_KEY (printed by `trustlab demo`) or pass --key")

    with ArenaClient(args.url, api_key=args.key) as client, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        client.download_all(args.task, folder)
        scores = detect(folder)
        files = {"sample (random)": folder / "sample_submission.csv"}
        for name in ("energy", "knn"):
            files[name] = folder / f"{name}.csv"
            write_csv(files[name], scores["ids"], scores[name])
        for name, csv in files.items():
            info = client.wait(client.submit(args.task, csv).submission_id)
            metrics = info.metrics or {}
            print(
                f"{name:>16}: {info.status.value}, public AUROC {info.public_score:.3f}, "
                f"FPR@95 {metrics.get('fpr@95', float('nan')):.3f}"
            )


if __name__ == "__main__":
    main()

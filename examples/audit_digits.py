"""Train a small CNN on the digits, then audit it: the report a user gets before shipping.

The script is what a user with their own model would write. It trains the digits CNN on half
of scikit-learn's 8x8 digits, saves it as trustlab safetensors (the architecture travels in the
file) and an ``.npz`` of every digit with its ``member`` flag (1 for the training half) and a
made-up sensitive attribute (the writer's "hand", to exercise the fairness section), then runs
the audit and prints the summary. The same audit from the command line::

    trustlab audit digits-cnn.safetensors --data digits-audit.npz --eps 0.1 --out audit-report

Run it with ``python examples/audit_digits.py [--out FOLDER] [--profile quick|standard]``;
``--device cuda`` runs the model on a GPU.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from trustlab.audit import RichProgress, run
from trustlab.core.data import load_digits, save_npz
from trustlab.core.models import build_model
from trustlab.core.training import fit_classifier
from trustlab.core.weights import save_model

EPS = 0.1  # the Linf radius of the digits robustness task


def train_and_save(folder: Path, *, epochs: int = 20, seed: int = 0) -> tuple[Path, Path]:
    """Train the digits CNN on half the digits; write its weights and the audit data."""
    digits = load_digits()
    rng = np.random.default_rng(seed)
    member = np.zeros(len(digits.y), dtype=bool)
    member[rng.permutation(len(digits.y))[: len(digits.y) // 2]] = True
    torch.manual_seed(seed)
    model = build_model("digits-cnn")
    fit_classifier(model, digits.x[member], digits.y[member], epochs=epochs, seed=seed)
    folder.mkdir(parents=True, exist_ok=True)
    weights = folder / "digits-cnn.safetensors"
    save_model(model, weights)
    hand = np.where(rng.random(len(digits.y)) < 0.3, "left", "right")
    data = folder / "digits-audit.npz"
    save_npz(data, x=digits.x, y=digits.y, member=member.astype(np.int64), groups=hand)
    return weights, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("audit-digits"))
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    weights, data = train_and_save(args.out, epochs=args.epochs)
    with RichProgress() as progress:
        report = run(
            weights,
            data,
            profile=args.profile,
            eps=EPS,
            out_dir=args.out / "report",
            device=args.device,
            progress=progress,
        )
    for line in report.summary:
        print(f"{line.light:>5}  {line.title}: {line.headline}")
    print(f"report: {args.out / 'report' / 'report.html'}")


if __name__ == "__main__":
    main()

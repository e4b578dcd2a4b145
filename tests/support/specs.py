"""Task specs shared by the tests."""

from __future__ import annotations

from typing import Any

SMALL_SPEC: dict[str, Any] = {
    "id": "mia-small",
    "kind": "membership-inference",
    "title": "Small membership task",
    "deadline": None,
    "public_fraction": 0.3,
    "cooldown": {"accepted": 0, "failed": 0},
    "limits": {"daily": None, "total": None},
    "max_file_size": "200KB",
    "dataset": "digits",
    "seed": 0,
    "params": {
        "architecture": "digits-cnn",
        "n_candidates": 200,
        "n_calibration": 40,
        "epochs": 3,
        "fprs": [0.05, 0.01],
        "bootstrap_resamples": 50,
    },
}

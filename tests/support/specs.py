"""Task specs shared by the tests."""

from __future__ import annotations

from typing import Any


def digits_spec(
    *,
    task_id: str,
    kind: str,
    title: str,
    max_file_size: str,
    params: dict[str, Any],
    seed: int = 0,
    **fields: Any,
) -> dict[str, Any]:
    """A spec on the digits data set under open rules (no cool-down, no submission limits,
    30% public), with any other spec ``fields`` (e.g. ``deadline``)."""
    return {
        "id": task_id,
        "kind": kind,
        "title": title,
        **fields,
        "public_fraction": 0.3,
        "cooldown": {"accepted": 0, "failed": 0},
        "limits": {"daily": None, "total": None},
        "max_file_size": max_file_size,
        "dataset": "digits",
        "seed": seed,
        "params": params,
    }


SMALL_SPEC: dict[str, Any] = digits_spec(
    task_id="mia-small",
    kind="membership-inference",
    title="Small membership task",
    deadline=None,
    max_file_size="200KB",
    params={
        "architecture": "digits-cnn",
        "n_candidates": 200,
        "n_calibration": 40,
        "epochs": 3,
        "fprs": [0.05, 0.01],
        "bootstrap_resamples": 50,
    },
)

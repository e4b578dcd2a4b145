"""Run :func:`trustlab.cli.main` in-process, as ``trustlab ARGS...`` would from a shell."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class Outcome:
    """What a command run in-process left: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


def main_runner(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Outcome]:
    """A function that runs ``trustlab ARGS...`` through ``main`` and returns its outcome."""
    from trustlab.cli import main

    def call(*args: str | Path) -> Outcome:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["trustlab", *(str(a) for a in args)])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return Outcome(code, captured.out, captured.err)

    return call

"""``trustlab audit``: a trustworthiness report on a trained classifier, from one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from trustlab.cli._common import console, out

#: The exit code of bad input (as click's usage errors).
BAD_INPUT = 2


def _fail(message: str) -> SystemExit:
    """One line on stderr; the exit code of bad input. (SystemExit, not typer.Exit: click
    swallows the code of typer.Exit when the app runs with standalone_mode=False.)"""
    console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return SystemExit(BAD_INPUT)


def audit(
    model: Annotated[
        str,
        typer.Argument(
            help="A trustlab .safetensors file (architecture in its metadata), an .onnx file, "
            "or module:function (or path/to/file.py:function) returning an nn.Module.",
            show_default=False,
        ),
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="An .npz (x, y; optional member, groups, sensitive_<name>) or a registered "
            "data set name (digits, adult, adult:train, ...).",
            show_default=False,
        ),
    ],
    train_data: Annotated[
        str | None,
        typer.Option(
            "--train-data",
            help="The model's training data (.npz or data set name), for the privacy section "
            "when --data has no member flags.",
        ),
    ] = None,
    sensitive: Annotated[
        str | None,
        typer.Option(
            "--sensitive",
            help="Sensitive attribute(s) to compare, comma-separated (default: every "
            "attribute in the data with two or more groups).",
        ),
    ] = None,
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for report.html, report.json, report.md.")
    ] = Path("audit-report"),
    profile: Annotated[
        str, typer.Option("--profile", help="quick (minutes), standard or thorough.")
    ] = "quick",
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Run only these sections, comma-separated (performance, robustness, privacy, "
            "fairness, calibration, explanations).",
        ),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    eps: Annotated[
        float | None,
        typer.Option(
            "--eps",
            help="Linf radius of the robustness section (default: 0.1 for digits, 8/255 for "
            "cifar10, else 8/255 of the input range for images and 0.1 of it otherwise).",
        ),
    ] = None,
    threshold: Annotated[
        list[str] | None,
        typer.Option(
            "--threshold",
            help="Override a traffic-light threshold as NAME=GREEN,AMBER, e.g. "
            "performance.accuracy=0.95,0.8 (repeatable).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of every subsample and draw.")] = 0,
) -> None:
    """Audit a model: performance, robustness, privacy, fairness, calibration, explanations.

    Writes report.html (self-contained), report.json (every number) and report.md into --out;
    finished sections are cached there, so a re-run does only the missing work. Bad input
    exits with code 2 and writes nothing.
    """
    from trustlab.audit import RichProgress, run
    from trustlab.audit.thresholds import parse_threshold
    from trustlab.core.errors import TrustlabError

    try:
        overrides = dict(parse_threshold(text) for text in threshold or [])
        with RichProgress(console=console) as progress:
            report = run(
                model,
                data,
                profile=profile,
                train_data=train_data,
                sensitive=sensitive,
                only=only,
                out_dir=out_dir,
                device=device,
                eps=eps,
                thresholds=overrides,
                seed=seed,
                progress=progress,
            )
    except TrustlabError as exc:
        raise _fail(str(exc)) from None
    for line in report.summary:
        colour = {"green": "green", "amber": "yellow", "red": "red"}.get(line.light, "dim")
        console.print(
            f"[{colour}]●[/] {escape(line.title)}: {escape(line.headline)}",
            highlight=False,
            soft_wrap=True,
        )
    out.print(str(out_dir / "report.html"), highlight=False, markup=False, soft_wrap=True)

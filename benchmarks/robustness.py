"""trustlab's attacks beside torchattacks, ART and the reference AutoAttack on one model.

Rows (one model, one set of inputs, fixed seeds):

- PGD at equal steps: a bare loop of the same number of forward and backward passes (the
  floor for an attack that attacks every example at every step), torchattacks ``PGD``, ART
  ``ProjectedGradientDescent`` (``PyTorchClassifier``) and trustlab ``PGD``.
- Evaluation mode: trustlab ``PGD(early_stop=True)``, where an example already misclassified
  needs no more steps.
- AutoAttack ``standard``: trustlab's cascade (on CUDA twice, with ``cudnn.benchmark`` on and
  off), the reference implementation (``fra31/auto-attack``) where it is installed, and
  torchattacks' port of the reference's four attacks run as a cascade at the reference's
  budget (APGD-CE 100 iterations, APGD-T and FAB-T 9 targets x 100 iterations, Square 5,000
  queries), which stands in for the reference when it is missing. Outside ``--quick``, also
  torchattacks' own ``AutoAttack`` (10 iterations) beside trustlab's cascade at that budget,
  and the sanity checks (switched off in every cascade row) timed on their own.

Configurations (``--model``): ``digits-cnn`` on the 8x8 digits (1x8x8), or ``resnet18`` on the
same digits scaled to 3x32x32 (bilinear, the grey level copied to three channels; more
inputs than the 450 test digits are taken by cycling them with one-pixel shifts). Both are
trained here first, offline. ``--device cuda`` runs everything on the GPU; inputs are handed
to every library already on that device.

Anchor libraries missing from the environment are skipped with a message: ``make
bench-install`` installs ART and torchattacks; the reference AutoAttack is not on PyPI and
installs from its repository (``pip install git+https://github.com/fra31/auto-attack``).

Forward and backward passes of the anchors are counted by wrapping the model in
``trustlab.robustness.CountingModel``; robust accuracy is recomputed from every library's
returned examples (clean-correct and still correct), and their distance to the clean inputs
is checked. Times are wall-clock seconds (the device synchronised before the clock stops),
the best of ``--repeats`` runs for the PGD rows (the bare loop runs once untimed first, to
warm up kernels and allocators).

Run: ``.venv/bin/python benchmarks/robustness.py`` (``--quick`` for a short run on the CPU;
``--device cuda --model resnet18`` for the GPU configuration).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.data import load_dataset, train_test_split_indices
from trustlab.core.models import build_model
from trustlab.core.training import accuracy, fit_classifier, seed_everything
from trustlab.robustness import (
    APGDCE,
    APGDT,
    FABT,
    PGD,
    AutoAttack,
    CountingModel,
    Square,
    run_sanity_checks,
)

STEP_FACTOR = 2.5  # step size 2.5 * eps / steps for every PGD row
REFERENCE_INSTALL = "pip install git+https://github.com/fra31/auto-attack"
T = TypeVar("T")


@dataclass
class Row:
    group: str
    name: str
    robust_accuracy: float
    seconds: float
    forwards: int
    backwards: int
    note: str = ""


@dataclass
class Setup:
    """The model under attack and the inputs, all on ``device``."""

    label: str
    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    device: torch.device
    n_classes: int


# --------------------------------------------------------------------------------------------
# Data and model


def _digits() -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    data = load_dataset("digits")
    x = torch.as_tensor(data.x, dtype=torch.float32)
    y = torch.as_tensor(data.y, dtype=torch.int64)
    train, test = train_test_split_indices(len(y), test_fraction=0.25, seed=0, stratify=data.y)
    return x, y, train, test


def as_images(x: torch.Tensor) -> torch.Tensor:
    """Digits (n, 1, 8, 8) as (n, 3, 32, 32): bilinear upscaling, grey copied to RGB."""
    big = F.interpolate(x.reshape(-1, 1, 8, 8), size=(32, 32), mode="bilinear")
    return big.clamp(0, 1).repeat(1, 3, 1, 1).contiguous()


def cycle(x: torch.Tensor, y: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` of ``x``, cycling through it with a one-pixel shift per pass."""
    shifts = [(0, 0), (1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)]
    xs, ys, have, turn = [], [], 0, 0
    while have < n:
        dy, dx = shifts[turn % len(shifts)]
        xs.append(torch.roll(x, shifts=(dy, dx), dims=(2, 3)))
        ys.append(y)
        have += len(y)
        turn += 1
    return torch.cat(xs)[:n].contiguous(), torch.cat(ys)[:n].contiguous()


def build_setup(name: str, *, device: torch.device, n: int, epochs: int, seed: int) -> Setup:
    x, y, train, test = _digits()
    seed_everything(seed)
    if name == "resnet18":
        x = as_images(x)
        model = build_model("resnet18", arguments={"num_classes": 10, "in_channels": 3})
        lr, batch_size = 1e-3, 128
    else:
        model = build_model("digits-cnn")
        lr, batch_size = 2e-3, 64
    model.to(device)
    started = time.perf_counter()
    fit_classifier(model, x[train], y[train], epochs=epochs, lr=lr, batch_size=batch_size, seed=0)
    seconds = time.perf_counter() - started
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    clean = accuracy(model, x[test], y[test])
    xs, ys = cycle(x[test], y[test], n) if n > len(test) else (x[test][:n], y[test][:n])
    label = (
        f"{name} on {tuple(x.shape[1:])} digits, trained {epochs} epochs in {seconds:.1f} s, "
        f"clean accuracy {clean:.4f} on {len(test)} test digits"
    )
    return Setup(label, model, xs.contiguous().to(device), ys.to(device), device, 10)


# --------------------------------------------------------------------------------------------
# Timing and checks


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_of(repeats: int, device: torch.device, run: Callable[[], T]) -> tuple[float, T]:
    """The best wall-clock time of ``repeats`` runs (the device drained before each stop)."""
    best, out = float("inf"), None
    for _ in range(repeats):
        synchronize(device)
        started = time.perf_counter()
        out = run()
        synchronize(device)
        best = min(best, time.perf_counter() - started)
    assert out is not None
    return best, out


@contextlib.contextmanager
def cudnn_benchmark(enabled: bool) -> Iterator[None]:
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = enabled
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


def robust_accuracy(setup: Setup, x_adv: torch.Tensor, eps: float) -> float:
    """Share of examples classified correctly both clean and at ``x_adv`` (checked in-ball)."""
    x, y = setup.x, setup.y
    x_adv = x_adv.detach().to(x.device)
    distance = float((x_adv - x).abs().amax())
    if distance > eps * (1 + 1e-5) + 1e-6 or float(x_adv.min()) < 0 or float(x_adv.max()) > 1:
        warnings.warn(
            f"returned examples leave the threat model (Linf {distance:.4g})", stacklevel=2
        )
    correct = []
    with torch.no_grad():
        for start in range(0, len(y), 512):
            part = slice(start, start + 512)
            clean = setup.model(x[part]).argmax(1) == y[part]
            adv = setup.model(x_adv[part]).argmax(1) == y[part]
            correct.append(clean & adv)
    return float(torch.cat(correct).float().mean())


def optional(module: str, why: str) -> ModuleType | None:
    """The anchor library ``module``, or ``None`` after a message saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        print(f"[skipped] {why}")
        return None


def counting(model: nn.Module) -> CountingModel:
    """``model`` wrapped to count its passes, in eval mode: anchors that restore the mode they
    were given (torchattacks does) must not find the wrapper in training mode."""
    return CountingModel(model).eval()


def ratio(seconds: float, base: float | None, what: str) -> str:
    return "" if base is None or base <= 0 else f"{seconds / base:.2f}x {what}"


# --------------------------------------------------------------------------------------------
# PGD


def bare_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int) -> Any:
    """PGD reduced to its passes: one forward and one backward of every example per step."""
    alpha = STEP_FACTOR * eps / steps
    low, high = (x - eps).clamp(min=0), (x + eps).clamp(max=1)
    x_adv = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
    for _ in range(steps):
        x_adv.requires_grad_(True)
        loss = F.cross_entropy(model(x_adv), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x_adv)
        x_adv = torch.clamp(x_adv.detach() + alpha * grad.sign(), min=low, max=high)
    return x_adv


def pgd_rows(setup: Setup, *, eps: float, steps: int, repeats: int, batch_size: int) -> list[Row]:
    model, x, y, device = setup.model, setup.x, setup.y, setup.device
    n = int(x.shape[0])
    alpha = STEP_FACTOR * eps / steps
    group = "PGD, equal steps"
    rows: list[Row] = []

    def bare() -> Any:
        return torch.cat(
            [
                bare_loop(model, x[i : i + batch_size], y[i : i + batch_size], eps, steps)
                for i in range(0, n, batch_size)
            ]
        )

    torch.manual_seed(0)
    bare()  # warm-up: kernels, allocator, cuDNN
    seconds, x_adv = best_of(repeats, device, bare)
    floor = seconds
    rows.append(
        Row(
            group,
            "bare loop (floor)",
            robust_accuracy(setup, x_adv, eps),
            seconds,
            n * steps,
            n * steps,
        )
    )

    torchattacks = optional(
        "torchattacks", "torchattacks is not installed: make bench-install (PGD rows)"
    )
    ta_seconds: float | None = None
    if torchattacks is not None:
        counted = counting(model)
        attack = torchattacks.PGD(counted, eps=eps, alpha=alpha, steps=steps, random_start=True)

        def run_torchattacks() -> Any:
            return torch.cat(
                [
                    attack(x[i : i + batch_size], y[i : i + batch_size])
                    for i in range(0, n, batch_size)
                ]
            )

        torch.manual_seed(0)
        seconds, x_adv = best_of(repeats, device, run_torchattacks)
        ta_seconds = seconds
        rows.append(
            Row(
                group,
                "torchattacks PGD",
                robust_accuracy(setup, x_adv, eps),
                seconds,
                counted.forwards // repeats,
                counted.backwards // repeats,
                ratio(seconds, floor, "floor"),
            )
        )

    art = optional("art.attacks.evasion", "ART is not installed: make bench-install (ART PGD row)")
    if art is not None:
        from art.estimators.classification import PyTorchClassifier

        counted = counting(model)
        classifier = PyTorchClassifier(
            model=counted,
            loss=nn.CrossEntropyLoss(),
            input_shape=tuple(x.shape[1:]),
            nb_classes=setup.n_classes,
            clip_values=(0.0, 1.0),
            device_type="gpu" if device.type == "cuda" else "cpu",
        )
        art_attack = art.ProjectedGradientDescent(
            classifier,
            norm=np.inf,
            eps=eps,
            eps_step=alpha,
            max_iter=steps,
            num_random_init=1,
            batch_size=batch_size,
            verbose=False,
        )
        x_np, y_np = x.cpu().numpy(), y.cpu().numpy()
        np.random.seed(0)
        seconds, x_adv = best_of(
            repeats, device, lambda: torch.as_tensor(art_attack.generate(x=x_np, y=y_np))
        )
        rows.append(
            Row(
                group,
                "ART PGD",
                robust_accuracy(setup, x_adv, eps),
                seconds,
                counted.forwards // repeats,
                counted.backwards // repeats,
                ratio(seconds, floor, "floor"),
            )
        )

    plain = PGD(eps=eps, steps=steps, step_size=alpha, seed=0)
    seconds, result = best_of(
        repeats, device, lambda: plain.generate(model=model, x=x, y=y, batch_size=batch_size)
    )
    rows.append(
        Row(
            group,
            "trustlab PGD",
            result.robust_accuracy,
            seconds,
            result.forwards,
            result.backwards,
            ratio(seconds, floor, "floor"),
        )
    )

    early = PGD(eps=eps, steps=steps, step_size=alpha, seed=0, early_stop=True)
    seconds, result = best_of(
        repeats, device, lambda: early.generate(model=model, x=x, y=y, batch_size=batch_size)
    )
    note = ratio(seconds, ta_seconds, "torchattacks PGD's time") or ratio(seconds, floor, "floor")
    rows.append(
        Row(
            "PGD, evaluation mode",
            "trustlab PGD(early_stop=True)",
            result.robust_accuracy,
            seconds,
            result.forwards,
            result.backwards,
            note,
        )
    )
    return rows


# --------------------------------------------------------------------------------------------
# AutoAttack


def autoattack_rows(setup: Setup, *, eps: float, n: int, quick: bool) -> list[Row]:
    model, device = setup.model, setup.device
    x, y = setup.x[:n], setup.y[:n]
    group = "AutoAttack standard"
    rows: list[Row] = []

    def trustlab_row(label: str) -> Row:
        # Sanity checks off, as no anchor has them; their cost is a row of its own.
        ours = AutoAttack(norm="Linf", eps=eps, version="standard", seed=0, sanity=None)
        seconds, result = best_of(
            1, device, lambda: ours.generate(model=model, x=x, y=y, batch_size=n)
        )
        stages = ", ".join(f"{s.name} {s.seconds:.1f}s" for s in result.stages)
        return Row(
            group, label, result.robust_accuracy, seconds, result.forwards, result.backwards, stages
        )

    if device.type == "cuda":
        with cudnn_benchmark(True):
            rows.append(trustlab_row("trustlab, cudnn.benchmark on"))
        with cudnn_benchmark(False):
            rows.append(trustlab_row("trustlab, cudnn.benchmark off"))
    else:
        rows.append(trustlab_row("trustlab AutoAttack"))
    ours = list(rows)

    base: tuple[float, str] | None = None
    reference = optional(
        "autoattack",
        f"the reference AutoAttack (fra31/auto-attack) is not installed; it is not on PyPI: "
        f"{REFERENCE_INSTALL}",
    )
    if reference is not None:
        counted = counting(model)
        theirs = reference.AutoAttack(
            counted, norm="Linf", eps=eps, version="standard", device=str(device), verbose=False
        )
        with cudnn_benchmark(device.type == "cuda"):
            seconds, x_adv = best_of(1, device, lambda: theirs.run_standard_evaluation(x, y, bs=n))
        rows.append(
            Row(
                group,
                "reference AutoAttack (fra31)",
                robust_accuracy(setup, x_adv, eps),
                seconds,
                counted.forwards,
                counted.backwards,
            )
        )
        base = (seconds, "the reference's time")

    torchattacks = optional(
        "torchattacks", "torchattacks is not installed: make bench-install (AutoAttack rows)"
    )
    if torchattacks is not None:
        counted = counting(model)
        common = {"eps": eps, "norm": "Linf", "seed": 0}
        port = torchattacks.MultiAttack(
            [
                torchattacks.APGD(counted, loss="ce", steps=100, n_restarts=1, **common),
                torchattacks.APGDT(
                    counted, steps=100, n_classes=setup.n_classes, n_restarts=1, **common
                ),
                torchattacks.FAB(
                    counted,
                    steps=100,
                    multi_targeted=True,
                    n_classes=setup.n_classes,
                    n_restarts=1,
                    **common,
                ),
                torchattacks.Square(counted, n_queries=5000, n_restarts=1, **common),
            ]
        )
        with cudnn_benchmark(device.type == "cuda"):
            seconds, x_adv = best_of(1, device, lambda: port(x, y))
        rows.append(
            Row(
                group,
                "torchattacks, reference budget",
                robust_accuracy(setup, x_adv, eps),
                seconds,
                counted.forwards,
                counted.backwards,
                "port of the reference's attacks as a cascade",
            )
        )
        if base is None:
            base = (seconds, "torchattacks at the reference's budget")
    if base is not None:
        for row in ours:
            row.note = f"{ratio(row.seconds, base[0], base[1])}; {row.note}"

    if quick:
        return rows
    rows += low_budget_rows(setup, x, y, eps=eps, torchattacks=torchattacks)
    seconds, report = best_of(
        1,
        device,
        lambda: run_sanity_checks(model=model, x=x, y=y, norm="Linf", eps=eps, seed=0),
    )
    rows.append(
        Row(
            "sanity checks",
            f"run_sanity_checks ({report.n_examples} examples)",
            float("nan"),
            seconds,
            report.forwards,
            report.backwards,
            f"failed flags: {', '.join(report.failed) or 'none'}",
        )
    )
    return rows


def low_budget_rows(
    setup: Setup, x: torch.Tensor, y: torch.Tensor, *, eps: float, torchattacks: Any
) -> list[Row]:
    """torchattacks' ``AutoAttack`` (10 iterations) and trustlab's cascade at that budget."""
    if torchattacks is None:
        return []
    model, device, n = setup.model, setup.device, int(x.shape[0])
    group = "AutoAttack, 10 iterations"
    counted = counting(model)
    theirs = torchattacks.AutoAttack(
        counted, norm="Linf", eps=eps, version="standard", n_classes=setup.n_classes, seed=0
    )
    ta_seconds, x_adv = best_of(1, device, lambda: theirs(x, y))
    common: dict[str, Any] = {"norm": "Linf", "eps": eps, "seed": 0}
    matched = AutoAttack(
        version="custom",
        attacks=[
            APGDCE(steps=10, **common),
            APGDT(steps=10, n_targets=9, **common),
            FABT(steps=10, n_targets=9, **common),
            Square(n_queries=5000, **common),
        ],
        sanity=None,
        **common,
    )
    seconds, result = best_of(
        1, device, lambda: matched.generate(model=model, x=x, y=y, batch_size=n)
    )
    return [
        Row(
            group,
            "torchattacks AutoAttack",
            robust_accuracy(setup, x_adv, eps),
            ta_seconds,
            counted.forwards,
            counted.backwards,
        ),
        Row(
            group,
            "trustlab, torchattacks' budget",
            result.robust_accuracy,
            seconds,
            result.forwards,
            result.backwards,
            ratio(seconds, ta_seconds, "torchattacks' time"),
        ),
    ]


# --------------------------------------------------------------------------------------------


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'group':<26} {'attack':<32} {'robust acc':>10} {'time s':>8} {'forwards':>11} "
        f"{'backwards':>11}  note"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.group:<26} {row.name:<32} {row.robust_accuracy:>10.4f} {row.seconds:>8.2f} "
            f"{row.forwards:>11,} {row.backwards:>11,}  {row.note}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer inputs, one eps, one repeat, the main AutoAttack rows only",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--model", choices=("digits-cnn", "resnet18"), default="digits-cnn")
    parser.add_argument(
        "--n",
        type=int,
        default=None,
        help="inputs for the PGD rows (digits-cnn 300, quick 100; resnet18 4500 "
        "on CUDA, 64 on the CPU)",
    )
    parser.add_argument(
        "--aa-n",
        type=int,
        default=None,
        help="inputs for AutoAttack (digits-cnn: as --n; resnet18 450, CPU 32)",
    )
    parser.add_argument(
        "--eps",
        type=float,
        nargs="+",
        default=None,
        help="Linf radii, inputs in [0, 1] (digits-cnn 0.1 0.2; resnet18 8/255)",
    )
    parser.add_argument("--steps", type=int, default=None, help="PGD steps (50; quick 20)")
    parser.add_argument("--repeats", type=int, default=None, help="timing repeats (3; quick 1)")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="PGD batch size (default: all inputs in one batch)",
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="training epochs (digits-cnn 12; resnet18 8, 2 on the CPU)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--skip-pgd", action="store_true")
    parser.add_argument("--skip-autoattack", action="store_true")
    args = parser.parse_args()

    # Deterministic CUDA training of the benchmark's model needs this before cuBLAS starts.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch sees no CUDA device here")
    torch.set_num_threads(args.threads)
    resnet, cuda = args.model == "resnet18", device.type == "cuda"
    if resnet:
        n = args.n or (4500 if cuda else 64)
        aa_n = args.aa_n or (450 if cuda else 32)
        epochs = args.epochs or (8 if cuda else 2)
        eps_list = args.eps or [8 / 255]
    else:
        n = args.n or (100 if args.quick else 300)
        aa_n = args.aa_n or n
        epochs = args.epochs or 12
        eps_list = args.eps or ([0.1] if args.quick else [0.1, 0.2])
    steps = args.steps or (20 if args.quick else 50)
    repeats = args.repeats or (1 if args.quick else 3)

    setup = build_setup(args.model, device=device, n=n, epochs=epochs, seed=0)
    name = (
        torch.cuda.get_device_name(device) if cuda else f"CPU, {torch.get_num_threads()} thread(s)"
    )
    print(
        f"{setup.label}; attacking {n} inputs (AutoAttack {aa_n}); Linf eps {eps_list}; PGD "
        f"{steps} steps of {STEP_FACTOR}*eps/steps; torch {torch.__version__} on {name}"
    )
    for eps in eps_list:
        rows: list[Row] = []
        if not args.skip_pgd:
            rows += pgd_rows(
                setup, eps=eps, steps=steps, repeats=repeats, batch_size=args.batch_size or n
            )
        if not args.skip_autoattack:
            rows += autoattack_rows(setup, eps=eps, n=min(aa_n, n), quick=args.quick)
        print(f"\neps = {eps:.6g}")
        print_table(rows)


if __name__ == "__main__":
    main()

"""trustlab's attacks beside torchattacks and ART on the same model, inputs and budget.

Rows (one model, one set of inputs, fixed seeds):

- PGD at equal steps: trustlab ``PGD`` (plain, every example every step), torchattacks
  ``PGD``, ART ``ProjectedGradientDescent`` (``PyTorchClassifier``), and a bare loop of the
  same number of forward and backward passes: the floor for an attack that attacks every
  example at every step.
- Evaluation mode: trustlab ``PGD(early_stop=True)``, where an example already misclassified
  needs no more steps, against torchattacks' PGD.
- AutoAttack ``standard``: trustlab's (APGD with the reference's 100 iterations) against
  torchattacks' (``torchattacks.AutoAttack(..., version="standard")``, APGD and FAB with 10),
  and trustlab's cascade at torchattacks' budget; the sanity checks, which trustlab's
  AutoAttack runs by default and torchattacks does not have, are switched off there and timed
  on their own.

Forward and backward passes of the anchor libraries are counted by wrapping the model in
``trustlab.robustness.CountingModel``; robust accuracy is recomputed from every library's
returned examples (clean-correct and still correct), and their distance to the clean inputs
is checked. Times are wall-clock seconds, the best of ``--repeats`` runs for the PGD rows.

Run: ``.venv/bin/python benchmarks/robustness.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

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
    AttackResult,
    AutoAttack,
    CountingModel,
    Square,
    run_sanity_checks,
)

STEP_FACTOR = 2.5  # step size 2.5 * eps / steps for every PGD row


@dataclass
class Row:
    group: str
    name: str
    robust_accuracy: float
    seconds: float
    forwards: int
    backwards: int
    note: str = ""


def train_model(seed: int) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    data = load_dataset("digits")
    x = torch.as_tensor(data.x, dtype=torch.float32)
    y = torch.as_tensor(data.y, dtype=torch.int64)
    train, test = train_test_split_indices(len(y), test_fraction=0.25, seed=0, stratify=data.y)
    seed_everything(seed)
    model = build_model("digits-cnn")
    fit_classifier(model, x[train], y[train], epochs=12, lr=2e-3, batch_size=64, seed=seed)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, x[test], y[test]


def robust_accuracy(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, x_adv: torch.Tensor, eps: float
) -> float:
    """Share of examples classified correctly both clean and at ``x_adv`` (checked in-ball)."""
    x_adv = x_adv.detach()
    distance = float((x_adv - x).abs().amax())
    if distance > eps * (1 + 1e-5) + 1e-6 or float(x_adv.min()) < 0 or float(x_adv.max()) > 1:
        warnings.warn(
            f"returned examples leave the threat model (Linf {distance:.4g})", stacklevel=2
        )
    with torch.no_grad():
        clean = model(x).argmax(1) == y
        adv = model(x_adv).argmax(1) == y
    return float((clean & adv).float().mean())


def best_time(repeats: int, run: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), torch.empty(0)
    for _ in range(repeats):
        started = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - started)
    return best, out


def best_result(repeats: int, run: Callable[[], AttackResult]) -> tuple[float, AttackResult]:
    best, out = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        out = run()
        best = min(best, time.perf_counter() - started)
    assert out is not None
    return best, out


def bare_loop(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int
) -> torch.Tensor:
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


def pgd_rows(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, repeats: int
) -> list[Row]:
    import torchattacks
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    n = int(x.shape[0])
    alpha = STEP_FACTOR * eps / steps
    rows: list[Row] = []

    torch.manual_seed(0)
    seconds, x_adv = best_time(repeats, lambda: bare_loop(model, x, y, eps, steps))
    rows.append(
        Row(
            "PGD, equal steps",
            "bare loop (floor)",
            robust_accuracy(model, x, y, x_adv, eps),
            seconds,
            n * steps,
            n * steps,
        )
    )
    floor = seconds

    plain = PGD(eps=eps, steps=steps, step_size=alpha, seed=0)
    seconds, result = best_result(
        repeats, lambda: plain.generate(model=model, x=x, y=y, batch_size=n)
    )
    rows.append(
        Row(
            "PGD, equal steps",
            "trustlab PGD",
            result.robust_accuracy,
            seconds,
            result.forwards,
            result.backwards,
            f"{seconds / floor:.2f}x floor",
        )
    )

    counted = CountingModel(model)
    attack = torchattacks.PGD(counted, eps=eps, alpha=alpha, steps=steps, random_start=True)
    torch.manual_seed(0)
    seconds, x_adv = best_time(repeats, lambda: attack(x, y))
    ta_seconds = seconds
    rows.append(
        Row(
            "PGD, equal steps",
            "torchattacks PGD",
            robust_accuracy(model, x, y, x_adv, eps),
            seconds,
            counted.forwards // repeats,
            counted.backwards // repeats,
            f"{seconds / floor:.2f}x floor",
        )
    )

    counted = CountingModel(model)
    classifier = PyTorchClassifier(
        model=counted,
        loss=nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    art_attack = ProjectedGradientDescent(
        classifier,
        norm=np.inf,
        eps=eps,
        eps_step=alpha,
        max_iter=steps,
        num_random_init=1,
        batch_size=n,
        verbose=False,
    )
    x_np, y_np = x.numpy(), y.numpy()
    np.random.seed(0)
    seconds, x_adv = best_time(
        repeats, lambda: torch.as_tensor(art_attack.generate(x=x_np, y=y_np))
    )
    rows.append(
        Row(
            "PGD, equal steps",
            "ART PGD",
            robust_accuracy(model, x, y, x_adv, eps),
            seconds,
            counted.forwards // repeats,
            counted.backwards // repeats,
            f"{seconds / floor:.2f}x floor",
        )
    )

    early = PGD(eps=eps, steps=steps, step_size=alpha, seed=0, early_stop=True)
    seconds, result = best_result(
        repeats, lambda: early.generate(model=model, x=x, y=y, batch_size=n)
    )
    rows.append(
        Row(
            "PGD, evaluation mode",
            "trustlab PGD(early_stop=True)",
            result.robust_accuracy,
            seconds,
            result.forwards,
            result.backwards,
            f"{ta_seconds / seconds:.2f}x faster than torchattacks",
        )
    )
    return rows


def autoattack_rows(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float) -> list[Row]:
    import torchattacks

    n = int(x.shape[0])
    # Sanity checks off, as torchattacks has none; their cost is its own row.
    ours = AutoAttack(norm="Linf", eps=eps, version="standard", seed=0, sanity=None)
    started = time.perf_counter()
    result = ours.run(model=model, x=x, y=y, batch_size=n)
    seconds = time.perf_counter() - started
    stages = ", ".join(f"{s.name} {s.seconds:.1f}s" for s in result.stages)

    # The same cascade at torchattacks' iteration counts, to separate implementation speed from
    # the reference's larger budget.
    common = {"norm": "Linf", "eps": eps, "seed": 0}
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
    started = time.perf_counter()
    matched_result = matched.run(model=model, x=x, y=y, batch_size=n)
    matched_seconds = time.perf_counter() - started

    started = time.perf_counter()
    report = run_sanity_checks(model=model, x=x, y=y, norm="Linf", eps=eps, seed=0)
    sanity_seconds = time.perf_counter() - started
    failed = ", ".join(report.failed) or "none"

    counted = CountingModel(model)
    theirs = torchattacks.AutoAttack(
        counted, norm="Linf", eps=eps, version="standard", n_classes=10, seed=0
    )
    started = time.perf_counter()
    x_adv = theirs(x, y)
    ta_seconds = time.perf_counter() - started
    ta_accuracy = robust_accuracy(model, x, y, x_adv, eps)
    return [
        Row(
            "AutoAttack standard",
            "trustlab AutoAttack",
            result.robust_accuracy,
            seconds,
            result.forwards,
            result.backwards,
            f"{seconds / ta_seconds:.2f}x torchattacks' time; {stages}",
        ),
        Row(
            "AutoAttack standard",
            "torchattacks AutoAttack",
            ta_accuracy,
            ta_seconds,
            counted.forwards,
            counted.backwards,
        ),
        Row(
            "AutoAttack standard",
            "trustlab, torchattacks' budget",
            matched_result.robust_accuracy,
            matched_seconds,
            matched_result.forwards,
            matched_result.backwards,
            f"{matched_seconds / ta_seconds:.2f}x torchattacks' time; APGD and FAB 10 iterations",
        ),
        Row(
            "sanity checks",
            f"run_sanity_checks ({report.n_examples} examples)",
            float("nan"),
            sanity_seconds,
            report.forwards,
            report.backwards,
            f"failed flags: {failed}",
        ),
    ]


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'group':<22} {'attack':<32} {'robust acc':>10} {'time s':>8} {'forwards':>10} "
        f"{'backwards':>10}  note"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row.group:<22} {row.name:<32} {row.robust_accuracy:>10.4f} {row.seconds:>8.2f} "
            f"{row.forwards:>10,} {row.backwards:>10,}  {row.note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples and one repeat")
    parser.add_argument("--n", type=int, default=None, help="examples (default 300; quick 100)")
    parser.add_argument(
        "--eps", type=float, nargs="+", default=[0.1, 0.2], help="Linf radii (inputs in [0, 1])"
    )
    parser.add_argument("--steps", type=int, default=None, help="PGD steps (default 50; quick 20)")
    parser.add_argument("--repeats", type=int, default=None, help="timing repeats (3; quick 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--skip-autoattack", action="store_true")
    args = parser.parse_args()
    n = args.n or (100 if args.quick else 300)
    steps = args.steps or (20 if args.quick else 50)
    repeats = args.repeats or (1 if args.quick else 3)
    torch.set_num_threads(args.threads)

    model, x_test, y_test = train_model(seed=0)
    x, y = x_test[:n].contiguous(), y_test[:n].contiguous()
    print(
        f"digits-cnn, clean accuracy {accuracy(model, x_test, y_test):.4f} on {len(y_test)} test "
        f"digits; attacking the first {n}; Linf eps {args.eps}; PGD {steps} steps of "
        f"{STEP_FACTOR}*eps/steps; torch {torch.__version__}, {torch.get_num_threads()} thread(s)"
    )
    for eps in args.eps:
        rows = pgd_rows(model, x, y, eps=eps, steps=steps, repeats=repeats)
        if not args.skip_autoattack:
            rows += autoattack_rows(model, x, y, eps=eps)
        print(f"\neps = {eps}")
        print_table(rows)


if __name__ == "__main__":
    main()

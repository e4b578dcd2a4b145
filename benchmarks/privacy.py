"""Membership inference on an overfitted Adult MLP: every attack of trustlab.privacy side by side.

Setup (Carlini et al.'s protocol). A population of ``N`` rows of UCI Adult (standardised
features); the target, an MLP, trains on a random half of it to near 100 % training accuracy;
16 reference models of the same recipe train on balanced random halves of the same
population (every row IN 8 of them), vectorised. Every population row is a candidate: ``N / 2``
members and ``N / 2`` non-members (2,000 of each, or 1,200 with ``--quick``, so a 0.1 % FPR point
rests on one or two false positives). RMIA's population samples z are 2,000 further Adult rows
that no model saw.

Rows: LOSS (Yeom et al.), calibrated LOSS (Watson et al., 16 models), Shokri's shadow-model
attack (16 shadows), LiRA online and offline with 16 models (per-example and global variance),
LiRA offline and RMIA with the same 2 models, the label-only attack (noise robustness), and
ART's membership attacks where ART is installed. Each row gives TPR at 0.1 % and 1 % FPR
(threshold rule: the largest TPR with FPR <= target, no interpolation) and AUC, with 95 %
stratified bootstrap intervals.

Then the cost of the reference models: the same 16 models trained vectorised (``vmap``) and one
after another (``trustlab.core.training.train``), wall time and mean test accuracy.

Last, the defence: the same target recipe trained with DP-SGD (Opacus, RDP accountant,
delta 1e-5) at epsilon 1, 4 and 8 beside the non-private model: test accuracy, the spent
epsilon, and the epsilon lower bound audited from the LOSS attack on the target's members and
non-members (Jagielski et al.'s Clopper-Pearson bound at 95 %, the threshold chosen on one
half of the candidates and the bound measured on the other, so it holds at that confidence).

Run: ``.venv/bin/python benchmarks/privacy.py [--quick] [--plot roc.png] [--threads 1]
[--dp-only]``
(``--quick``: N = 2,400, 80 epochs, 200 bootstrap resamples; the full run: N = 4,000, 100
epochs, 1,000 resamples).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from trustlab.core.data import load_dataset
from trustlab.core.metrics import tpr_at_fpr
from trustlab.core.models import build_model
from trustlab.core.seeding import seeded
from trustlab.core.training import accuracy, train
from trustlab.privacy import (
    DPSGD,
    RMIA,
    CalibratedLossAttack,
    LabelOnlyAttack,
    LiRA,
    LossThresholdAttack,
    ReferenceModels,
    ShadowModelAttack,
    membership_report,
    plot_roc,
)
from trustlab.privacy.audit import epsilon_lower_bound

SEED = 0
FPRS = (0.001, 0.01)
DP_DELTA = 1e-5


def _data(n_population: int, n_z: int) -> dict[str, np.ndarray]:
    data = load_dataset("adult")
    x = data.x.astype(np.float32)
    rng = np.random.default_rng(SEED)
    order = rng.permutation(len(x))
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-6)
    pop, z, test = np.split(order[: n_population + n_z + 2000], [n_population, n_population + n_z])
    return {
        "x": x[pop],
        "y": data.y[pop].astype(np.int64),
        "z_x": x[z],
        "z_y": data.y[z].astype(np.int64),
        "test_x": x[test],
        "test_y": data.y[test].astype(np.int64),
    }


def _fmt(ci: Any) -> str:
    return f"{ci.estimate:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and resamples")
    parser.add_argument("--plot", help="write the ROC curves (log-log) to this PNG")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--dp-only", action="store_true", help="the target and the DP rows only")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n_resamples = 200 if args.quick else 1000
    population = 2400 if args.quick else 4000
    epochs = 80 if args.quick else 100
    recipe = {"epochs": epochs, "lr": 3e-3, "batch_size": 64, "optimizer": "adam"}
    architecture = "mlp"
    data = _data(population, 2000)
    arguments = {"in_features": data["x"].shape[1], "num_classes": 2, "hidden": [128, 128]}
    n = len(data["y"])
    print(f"population N={n} (Adult), target trains on a random half; z: {len(data['z_y'])} rows")
    print(f"recipe: mlp {arguments['hidden']}, {recipe}")

    # The target: its own random half, its own seed.
    member = np.random.default_rng(SEED + 1).permutation(n) < n // 2
    with seeded(SEED + 2):
        target = build_model(architecture, arguments=arguments)
    start = time.perf_counter()
    train(
        target,
        data={"x": torch.from_numpy(data["x"]), "y": torch.from_numpy(data["y"])},
        rows=torch.from_numpy(np.flatnonzero(member)),
        seed=SEED + 3,
        **recipe,  # type: ignore[arg-type]
    )
    target.eval()
    print(
        f"target: train accuracy {accuracy(target, data['x'][member], data['y'][member]):.3f}, "
        f"test accuracy {accuracy(target, data['test_x'], data['test_y']):.3f} "
        f"({time.perf_counter() - start:.1f} s); members {member.sum()}, "
        f"non-members {(~member).sum()}"
    )
    if args.dp_only:
        _dp(data, arguments, member, target, quick=args.quick)
        return

    start = time.perf_counter()
    reference = ReferenceModels.train(
        architecture=architecture,
        arguments=arguments,
        x=data["x"],
        y=data["y"],
        n_models=16,
        seed=SEED + 4,
        **recipe,  # type: ignore[arg-type]
    )
    print(f"16 reference models, vectorised: {time.perf_counter() - start:.1f} s")
    pair = reference.subset([0, 1])  # a complementary pair
    index = np.arange(n)
    x, y = data["x"], data["y"]
    attacks: dict[str, Callable[[], np.ndarray]] = {
        "LOSS (Yeom)": lambda: LossThresholdAttack().infer(model=target, x=x, y=y),
        "calibrated LOSS (Watson), 16 refs": lambda: CalibratedLossAttack(
            reference=reference
        ).infer(model=target, x=x, y=y, candidate_index=index),
        "Shokri shadow models, 16": lambda: ShadowModelAttack(
            reference=reference, population_x=x, population_y=y
        ).infer(model=target, x=x, y=y),
        "LiRA online, 16 refs": lambda: LiRA(reference=reference).infer(
            model=target, x=x, y=y, candidate_index=index
        ),
        "LiRA online, 16 refs, global var": lambda: LiRA(
            reference=reference, fixed_variance=True
        ).infer(model=target, x=x, y=y, candidate_index=index),
        "LiRA offline, 16 refs, global var": lambda: LiRA(
            reference=reference, online=False, fixed_variance=True
        ).infer(model=target, x=x, y=y, candidate_index=index),
        "LiRA offline, 2 refs, global var": lambda: LiRA(
            reference=pair, online=False, fixed_variance=True
        ).infer(model=target, x=x, y=y, candidate_index=index),
        "RMIA offline, 2 refs": lambda: RMIA(
            reference=pair, population_x=data["z_x"], population_y=data["z_y"]
        ).infer(model=target, x=x, y=y, candidate_index=index),
        "label-only (noise 0.5, 20 queries)": lambda: LabelOnlyAttack(noise=0.5).infer(
            model=target, x=x, y=y
        ),
    }
    scores: dict[str, np.ndarray] = {}
    print()
    print("| attack | TPR @ 0.1% FPR | TPR @ 1% FPR | AUC | time (s) |")
    print("|---|---|---|---|---|")
    for name, run in attacks.items():
        start = time.perf_counter()
        scores[name] = run()
        elapsed = time.perf_counter() - start
        report = membership_report(
            y_true=member, scores=scores[name], fprs=FPRS, n_resamples=n_resamples
        )
        print(
            f"| {name} | {_fmt(report.tpr[0.001])} | {_fmt(report.tpr[0.01])} | "
            f"{_fmt(report.auc)} | {elapsed:.1f} |"
        )
    _art_rows(target, x, y, member, n_resamples)

    loss_tpr = tpr_at_fpr(y_true=member, scores=scores["LOSS (Yeom)"], fpr=0.01)
    lira_tpr = tpr_at_fpr(y_true=member, scores=scores["LiRA online, 16 refs"], fpr=0.01)
    ratio = f"{lira_tpr / loss_tpr:.1f}x" if loss_tpr > 0 else "LOSS has TPR 0"
    print(f"\nTPR at 1% FPR: LiRA online {lira_tpr:.3f}, LOSS {loss_tpr:.3f} ({ratio})")
    if args.plot:
        plot_roc(y_true=member, scores=scores, path=args.plot, title="Adult MLP")
        print(f"ROC curves written to {args.plot}")

    _timing(data, arguments, recipe, quick=args.quick)
    _dp(data, arguments, member, target, quick=args.quick)


def _art_rows(
    target: torch.nn.Module, x: np.ndarray, y: np.ndarray, member: np.ndarray, n_resamples: int
) -> None:
    try:
        from art.attacks.inference.membership_inference import (  # type: ignore[import-not-found]
            LabelOnlyGapAttack,
        )
        from art.estimators.classification import PyTorchClassifier  # type: ignore[import-not-found]
    except ImportError:
        print("| ART membership attacks | skipped: adversarial-robustness-toolbox is not installed "
              "(pip install 'trustlab[bench]') | | | |")  # fmt: skip
        return
    classifier = PyTorchClassifier(
        model=target,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=x.shape[1:],
        nb_classes=2,
    )
    start = time.perf_counter()
    predicted = LabelOnlyGapAttack(classifier).infer(x, y).astype(np.float64)
    report = membership_report(y_true=member, scores=predicted, fprs=FPRS, n_resamples=n_resamples)
    print(
        f"| ART LabelOnlyGapAttack | {_fmt(report.tpr[0.001])} | {_fmt(report.tpr[0.01])} | "
        f"{_fmt(report.auc)} | {time.perf_counter() - start:.1f} |"
    )


def _timing(
    data: dict[str, np.ndarray], arguments: dict[str, Any], recipe: dict[str, Any], *, quick: bool
) -> None:
    epochs = 5 if quick else 10
    timed = {**recipe, "epochs": epochs}
    print(f"\nReference-model training: 16 models, {epochs} epochs on {len(data['y'])} rows")
    print("| MLP | training | wall time (s) | CPU time (s) | mean test accuracy |")
    print("|---|---|---|---|---|")
    for hidden in (arguments["hidden"], [32]):
        mlp = {**arguments, "hidden": hidden}
        rows = []
        for vectorise in (True, False):
            wall, cpu = time.perf_counter(), time.process_time()
            models = ReferenceModels.train(
                architecture="mlp",
                arguments=mlp,
                x=data["x"],
                y=data["y"],
                n_models=16,
                seed=SEED + 5,
                vectorise=vectorise,
                **timed,
            )
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            test = float(
                np.mean([accuracy(m, data["test_x"], data["test_y"]) for m in models.models])
            )
            rows.append((wall, cpu, test, models))
            label = "vectorised (vmap)" if vectorise else "one after another (train)"
            print(f"| {hidden} | {label} | {wall:.1f} | {cpu:.1f} | {test:.4f} |")
        difference = (rows[0][3].logits(data["test_x"]) - rows[1][3].logits(data["test_x"])).abs()
        print(
            f"| {hidden} | speed-up | {rows[1][0] / rows[0][0]:.1f}x | "
            f"{rows[1][1] / rows[0][1]:.1f}x | largest logit difference "
            f"{float(difference.max()):.1e} |"
        )


def _audited(model: torch.nn.Module, data: dict[str, np.ndarray], member: np.ndarray) -> float:
    """The LOSS attack's epsilon lower bound, threshold from one half, bound on the other."""
    scores = LossThresholdAttack().infer(model=model, x=data["x"], y=data["y"])
    halves = np.random.default_rng(SEED + 9).permutation(len(scores)) % 2 == 0
    chosen = epsilon_lower_bound(
        y_true=member[halves].astype(int), scores=scores[halves], delta=DP_DELTA
    )
    held_out = epsilon_lower_bound(
        y_true=member[~halves].astype(int),
        scores=scores[~halves],
        delta=DP_DELTA,
        threshold=chosen.threshold,
    )
    return held_out.epsilon


def _dp(
    data: dict[str, np.ndarray],
    arguments: dict[str, Any],
    member: np.ndarray,
    target: torch.nn.Module,
    *,
    quick: bool,
) -> None:
    epochs = 10 if quick else 30
    x, y = data["x"][member], data["y"][member]
    print(f"\nDP-SGD on the target's {member.sum()} members, {epochs} epochs, delta {DP_DELTA:g}")
    print("| model | test accuracy | spent epsilon | audited epsilon lower bound (95 %) |")
    print("|---|---|---|---|")
    test = accuracy(target, data["test_x"], data["test_y"])
    print(f"| non-private (the target) | {test:.3f} | inf | {_audited(target, data, member):.2f} |")
    for epsilon in (1.0, 4.0, 8.0):
        dp = DPSGD(
            architecture="mlp",
            arguments=arguments,
            epsilon=epsilon,
            delta=DP_DELTA,
            epochs=epochs,
            batch_size=64,
            seed=SEED + 6,
        ).fit(x=x, y=y)
        model = dp.model_
        print(
            f"| DP-SGD, epsilon {epsilon:g} | "
            f"{accuracy(model, data['test_x'], data['test_y']):.3f} | "
            f"{dp.report_.epsilon:.2f} | {_audited(model, data, member):.2f} |"
        )


if __name__ == "__main__":
    main()

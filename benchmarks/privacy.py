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

Second target, where LOSS finds some members at 1 % FPR, so that LiRA's ratio to it is a real
number: an MLP (256x256) on scikit-learn's 1,797 handwritten digits (64 pixels, flattened),
trained on a random half (898 members, 899 non-members), 16 reference models of the same recipe.
Rows: LOSS, calibrated LOSS, LiRA online and offline.

Then the cost of the reference models: the same 16 models (same initial weights, same
mini-batches) trained vectorised and one after another through
``trustlab.core.training.train``, best of 3 alternating runs, wall and CPU time, and mean test
accuracy; for the MLP also the general ``vmap`` path that other architectures take.

Last, the defence: the same target recipe trained with DP-SGD (Opacus, RDP accountant,
delta 1e-5) at epsilon 1, 4 and 8 beside the non-private model: test accuracy, the spent
epsilon, and the epsilon lower bound audited from the LOSS attack on the target's members and
non-members (Jagielski et al.'s Clopper-Pearson bound at 95 %, the threshold chosen on one
half of the candidates and the bound measured on the other, so it holds at that confidence).

Run: ``.venv/bin/python benchmarks/privacy.py [--quick] [--plot roc.png] [--threads 1]
[--device cuda] [--dp-only]``
(``--quick``: N = 2,400, 80 epochs, 200 bootstrap resamples; the full run: N = 4,000, 100
epochs, 1,000 resamples). ``--device`` trains the targets and the reference models there (the
attacks and DP-SGD run on the CPU).
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
from trustlab.privacy._vectorised import train_vectorised
from trustlab.privacy.audit import epsilon_lower_bound
from trustlab.privacy.reference import _seeds, split_population

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


def _train_target(
    architecture: str,
    arguments: dict[str, Any],
    data: dict[str, np.ndarray],
    member: np.ndarray,
    recipe: dict[str, Any],
    device: str,
) -> torch.nn.Module:
    """The target: its own random half, its own seed, trained on ``device``, returned on the CPU."""
    with seeded(SEED + 2):
        target = build_model(architecture, arguments=arguments).to(device)
    start = time.perf_counter()
    train(
        target,
        data={"x": torch.from_numpy(data["x"]), "y": torch.from_numpy(data["y"])},
        rows=torch.from_numpy(np.flatnonzero(member)),
        seed=SEED + 3,
        **recipe,
    )
    target = target.cpu().eval()
    print(
        f"target: train accuracy {accuracy(target, data['x'][member], data['y'][member]):.3f}, "
        f"test accuracy {accuracy(target, data['test_x'], data['test_y']):.3f} "
        f"({time.perf_counter() - start:.1f} s); members {member.sum()}, "
        f"non-members {(~member).sum()}"
    )
    return target


def _rows(
    attacks: dict[str, Callable[[], np.ndarray]], member: np.ndarray, n_resamples: int
) -> dict[str, np.ndarray]:
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
    return scores


def _ratio(member: np.ndarray, scores: dict[str, np.ndarray], lira: str) -> None:
    loss_tpr = tpr_at_fpr(y_true=member, scores=scores["LOSS (Yeom)"], fpr=0.01)
    lira_tpr = tpr_at_fpr(y_true=member, scores=scores[lira], fpr=0.01)
    ratio = f"{lira_tpr / loss_tpr:.1f}x" if loss_tpr > 0 else "LOSS has TPR 0"
    print(f"\nTPR at 1% FPR: {lira} {lira_tpr:.3f}, LOSS {loss_tpr:.3f} ({ratio})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and resamples")
    parser.add_argument("--plot", help="write the ROC curves (log-log) to this PNG")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--device", default="cpu", help="where models train (default cpu)")
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
    print(f"torch {torch.__version__}, {args.threads} thread(s), training on {args.device}")
    print(f"population N={n} (Adult), target trains on a random half; z: {len(data['z_y'])} rows")
    print(f"recipe: mlp {arguments['hidden']}, {recipe}")
    member = np.random.default_rng(SEED + 1).permutation(n) < n // 2
    target = _train_target(architecture, arguments, data, member, recipe, args.device)
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
        device=args.device,
        **recipe,
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
    scores = _rows(attacks, member, n_resamples)
    _art_rows(target, reference, x, y, member, n_resamples)
    _ratio(member, scores, "LiRA online, 16 refs")
    if args.plot:
        plot_roc(y_true=member, scores=scores, path=args.plot, title="Adult MLP")
        print(f"ROC curves written to {args.plot}")

    _digits(quick=args.quick, n_resamples=n_resamples, device=args.device)
    _timing(data, arguments, recipe, quick=args.quick, device=args.device)
    _dp(data, arguments, member, target, quick=args.quick)


def _digits(*, quick: bool, n_resamples: int, device: str) -> None:
    digits = load_dataset("digits")
    x = digits.x.reshape(len(digits.y), -1).astype(np.float32)
    y = digits.y.astype(np.int64)
    n = len(y)
    member = np.random.default_rng(SEED + 1).permutation(n) < n // 2
    data = {"x": x, "y": y, "test_x": x[~member], "test_y": y[~member]}
    arguments = {"in_features": x.shape[1], "num_classes": 10, "hidden": [256, 256]}
    recipe = {"epochs": 60 if quick else 100, "lr": 1e-3, "batch_size": 64, "optimizer": "adam"}
    print(f"\nSecond target: digits, N={n}, mlp {arguments['hidden']}, {recipe}")
    target = _train_target("mlp", arguments, data, member, recipe, device)
    start = time.perf_counter()
    reference = ReferenceModels.train(
        architecture="mlp", arguments=arguments, x=x, y=y, n_models=16, seed=SEED + 4,
        device=device, **recipe,
    )  # fmt: skip
    print(f"16 reference models, vectorised: {time.perf_counter() - start:.1f} s")
    index = np.arange(n)
    attacks: dict[str, Callable[[], np.ndarray]] = {
        "LOSS (Yeom)": lambda: LossThresholdAttack().infer(model=target, x=x, y=y),
        "calibrated LOSS (Watson), 16 refs": lambda: CalibratedLossAttack(
            reference=reference
        ).infer(model=target, x=x, y=y, candidate_index=index),
        "LiRA online, 16 refs": lambda: LiRA(reference=reference).infer(
            model=target, x=x, y=y, candidate_index=index
        ),
        "LiRA offline, 16 refs, global var": lambda: LiRA(
            reference=reference, online=False, fixed_variance=True
        ).infer(model=target, x=x, y=y, candidate_index=index),
    }
    scores = _rows(attacks, member, n_resamples)
    _ratio(member, scores, "LiRA online, 16 refs")


def _art_rows(
    target: torch.nn.Module,
    reference: ReferenceModels,
    x: np.ndarray,
    y: np.ndarray,
    member: np.ndarray,
    n_resamples: int,
) -> None:
    try:
        from art.attacks.inference.membership_inference import (  # type: ignore[import-not-found]
            LabelOnlyGapAttack,
            MembershipInferenceBlackBox,
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
        device_type="cpu",
    )

    def gap() -> np.ndarray:
        return np.asarray(LabelOnlyGapAttack(classifier).infer(x, y), dtype=np.float64).ravel()

    def black_box() -> np.ndarray:
        # ART's attack model (its default: a small network, 100 epochs) trained on the
        # softmax outputs of a complementary pair of our reference models on their IN and OUT
        # rows, as in Shokri et al.; then applied to the target's outputs.
        shadow = torch.softmax(reference.subset([0, 1]).logits(x), dim=-1).numpy()
        inside = reference.membership[:2]
        attack = MembershipInferenceBlackBox(classifier, attack_model_type="nn")
        attack.fit(
            x=np.concatenate([x[row] for row in inside]),
            y=np.concatenate([y[row] for row in inside]),
            test_x=np.concatenate([x[~row] for row in inside]),
            test_y=np.concatenate([y[~row] for row in inside]),
            pred=np.concatenate([shadow[i][row] for i, row in enumerate(inside)]),
            test_pred=np.concatenate([shadow[i][~row] for i, row in enumerate(inside)]),
        )
        with torch.no_grad():
            probabilities = torch.softmax(target(torch.from_numpy(x)), dim=-1).numpy()
        inferred = attack.infer(x, y, pred=probabilities, probabilities=True)
        return np.asarray(inferred, dtype=np.float64).reshape(len(x), -1)[:, -1]

    for name, run in {
        "ART LabelOnlyGapAttack": gap,
        "ART MembershipInferenceBlackBox (nn), 2 of our shadows": black_box,
    }.items():
        start = time.perf_counter()
        scores = run()
        report = membership_report(y_true=member, scores=scores, fprs=FPRS, n_resamples=n_resamples)
        print(
            f"| {name} | {_fmt(report.tpr[0.001])} | {_fmt(report.tpr[0.01])} | "
            f"{_fmt(report.auc)} | {time.perf_counter() - start:.1f} |"
        )


def _timing(
    data: dict[str, np.ndarray],
    arguments: dict[str, Any],
    recipe: dict[str, Any],
    *,
    quick: bool,
    device: str,
) -> None:
    epochs = 5 if quick else 10
    repeats = 3
    timed = {**recipe, "epochs": epochs}
    print(
        f"\nReference-model training: 16 models, {epochs} epochs on {len(data['y'])} rows, "
        f"on {device}, best of {repeats} alternating runs"
    )
    print("| MLP | training | wall time (s) | CPU time (s) | mean test accuracy |")
    print("|---|---|---|---|---|")

    def run(mlp: dict[str, Any], how: str) -> tuple[float, float, ReferenceModels]:
        wall, cpu = time.perf_counter(), time.process_time()
        if how == "vmap":
            models = _vmap_models(data, mlp, timed, device)
        else:
            models = ReferenceModels.train(
                architecture="mlp", arguments=mlp, x=data["x"], y=data["y"], n_models=16,
                seed=SEED + 5, vectorise=how == "direct", device=device, **timed,
            )  # fmt: skip
        return time.perf_counter() - wall, time.process_time() - cpu, models

    labels = {
        "direct": "vectorised (batched matmuls)",
        "vmap": "vectorised, vmap path",
        "loop": "one after another (train)",
    }
    for hidden in (arguments["hidden"], [32]):
        mlp = {**arguments, "hidden": hidden}
        for how in labels:  # warm up each path once
            run({**mlp, "hidden": [4]}, how)
        best: dict[str, tuple[float, float, ReferenceModels]] = {}
        for _ in range(repeats):
            for how in labels:
                wall, cpu, models = run(mlp, how)
                old = best.get(how)
                best[how] = (
                    min(wall, old[0]) if old else wall,
                    min(cpu, old[1]) if old else cpu,
                    models,
                )
        for how, (wall, cpu, models) in best.items():
            test = float(
                np.mean([accuracy(m, data["test_x"], data["test_y"]) for m in models.models])
            )
            print(f"| {hidden} | {labels[how]} | {wall:.2f} | {cpu:.2f} | {test:.4f} |")
        loop, direct = best["loop"], best["direct"]
        difference = (direct[2].logits(data["test_x"]) - loop[2].logits(data["test_x"])).abs()
        print(
            f"| {hidden} | speed-up (loop / batched) | {loop[0] / direct[0]:.1f}x | "
            f"{loop[1] / direct[1]:.1f}x | largest logit difference "
            f"{float(difference.max()):.1e} |"
        )


def _vmap_models(
    data: dict[str, np.ndarray], mlp: dict[str, Any], recipe: dict[str, Any], device: str
) -> ReferenceModels:
    """The models ``ReferenceModels.train`` gives with the same seed, through the vmap path."""
    split_seed, model_seeds = _seeds(SEED + 5, 16)
    membership = split_population(16, len(data["y"]), seed=split_seed)
    models = []
    for model_seed in model_seeds:
        with seeded(model_seed):
            models.append(build_model("mlp", arguments=mlp).to(device))
    train_vectorised(
        models,
        x=torch.from_numpy(data["x"]),
        y=torch.from_numpy(data["y"]),
        rows=[torch.from_numpy(np.flatnonzero(row)) for row in membership],
        seeds=model_seeds,
        weight_decay=0.0,
        progress=None,
        direct=False,
        **recipe,
    )
    return ReferenceModels(
        architecture="mlp",
        arguments=mlp,
        membership=membership,
        models=[model.cpu() for model in models],
        recipe=recipe,
        population={},
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

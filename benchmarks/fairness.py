"""Fairness on UCI Adult (sensitive attribute: sex): trustlab's mitigations beside Fairlearn.

Every method is trained on the Adult train split and scored on the test split (15,060 rows)
with hard predictions: accuracy, demographic-parity gap and equalized-odds gap (between the
sexes, as :func:`trustlab.fairness.fairness_gap` and Fairlearn define them), and wall time.

Rows: an unconstrained trustlab MLP; each trustlab mitigation on that MLP (reweighing,
constrained training, adversarial debiasing, group thresholds); trustlab's group thresholds on
the gradient-boosted model's scores; and Fairlearn's ExponentiatedGradient (logistic regression)
and ThresholdOptimizer (logistic regression and gradient boosting), all for demographic parity.

Run ``.venv/bin/python benchmarks/fairness.py`` (a few minutes) or with ``--quick`` (5,000
training rows, fewer epochs). ``--plot front.png`` also draws the accuracy/gap front of group
thresholds on the MLP over a range of tolerances.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from trustlab.core.data import load_dataset
from trustlab.core.models import build_model
from trustlab.core.training import fit_classifier, predict_logits, seed_everything
from trustlab.fairness import (
    AdversarialDebiasing,
    FairnessConstrainedClassifier,
    GroupThresholds,
    Reweighing,
    fairness_gap,
    pareto_sweep,
    plot_pareto,
)

SEED = 0


def _scores(y: np.ndarray, y_pred: np.ndarray, sex: np.ndarray) -> dict[str, float]:
    return {
        "accuracy": float(np.mean(y_pred == y)),
        "dp_gap": fairness_gap(
            criterion="demographic_parity", y_true=y, y_pred=y_pred, sensitive_features=sex
        ),
        "eo_gap": fairness_gap(
            criterion="equalized_odds", y_true=y, y_pred=y_pred, sensitive_features=sex
        ),
    }


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _margin(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    logits = predict_logits(model, x)
    return (logits[:, 1] - logits[:, 0]).numpy().astype(np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 training rows, fewer epochs")
    parser.add_argument("--plot", default=None, help="save the group-threshold front here")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    train = load_dataset("adult", split="train", sensitive=("sex",))
    test = load_dataset("adult", split="test", sensitive=("sex",))
    x, y, sex = train.x, train.y, train.sensitive["sex"]
    if args.quick:
        rows = np.random.default_rng(SEED).choice(len(x), 5000, replace=False)
        x, y, sex = x[rows], y[rows], sex[rows]
    x_test, y_test, sex_test = test.x, test.y, test.sensitive["sex"]
    epochs = 8 if args.quick else 20
    mlp = {"in_features": x.shape[1], "hidden": [64, 64], "dropout": 0.2}
    training: dict[str, Any] = {
        "epochs": epochs,
        "lr": 1e-3,
        "batch_size": 256,
        "weight_decay": 1e-4,
    }

    def new_model() -> torch.nn.Module:
        seed_everything(SEED)
        return build_model("mlp", arguments=mlp)

    results: list[tuple[str, dict[str, float]]] = []

    def record(name: str, y_pred: np.ndarray, seconds: float) -> None:
        row = _scores(y_test, np.asarray(y_pred).astype(np.int64), sex_test)
        row["seconds"] = seconds
        results.append((name, row))
        print(
            f"  {name}: accuracy {row['accuracy']:.4f}, DP gap {row['dp_gap']:.4f}, "
            f"EO gap {row['eo_gap']:.4f}, {seconds:.1f} s",
            flush=True,
        )

    # -- trustlab ----------------------------------------------------------------------------
    base = new_model()
    _, seconds = _timed(
        lambda: fit_classifier(base, x, y, optimizer="adamw", seed=SEED, **training)
    )
    record("trustlab MLP, unconstrained", predict_logits(base, x_test).argmax(1).numpy(), seconds)

    def reweighing() -> np.ndarray:
        fitted = Reweighing(seed=SEED, **training).fit(
            model=new_model(), x=x, y=y, sensitive_features=sex
        )
        return fitted.predict(x=x_test)

    record("trustlab Reweighing (MLP)", *_timed(reweighing))

    def constrained() -> np.ndarray:
        fitted = FairnessConstrainedClassifier(
            criterion="demographic_parity",
            bound=0.01,
            seed=SEED,
            epochs=epochs,
            lr=1e-3,
            batch_size=512,
            weight_decay=1e-4,
        ).fit(model=new_model(), x=x, y=y, sensitive_features=sex)
        return fitted.predict(x=x_test)

    record("trustlab FairnessConstrainedClassifier, DP <= 0.01 (MLP)", *_timed(constrained))

    def adversarial() -> np.ndarray:
        fitted = AdversarialDebiasing(criterion="demographic_parity", seed=SEED, **training).fit(
            model=new_model(), x=x, y=y, sensitive_features=sex
        )
        return fitted.predict(x=x_test)

    record("trustlab AdversarialDebiasing (MLP)", *_timed(adversarial))

    train_margin = _margin(base, x)
    test_margin = _margin(base, x_test)

    def thresholds() -> np.ndarray:
        post = GroupThresholds(criterion="demographic_parity").fit(
            scores=train_margin, y=y, sensitive_features=sex
        )
        return post.predict(scores=test_margin, sensitive_features=sex_test, seed=SEED)

    record("trustlab GroupThresholds, DP (MLP scores)", *_timed(thresholds))

    # -- anchors (benchmark-only extra) --------------------------------------------------------
    from fairlearn.postprocessing import ThresholdOptimizer
    from fairlearn.reductions import DemographicParity, ExponentiatedGradient
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    def logistic() -> Any:
        return LogisticRegression(max_iter=2000)

    def boosting() -> Any:
        return HistGradientBoostingClassifier(random_state=SEED)

    # Fairlearn's post-processing writes float64 into arrays shaped like the input.
    x64, x64_test = x.astype(np.float64), x_test.astype(np.float64)
    lr_model = logistic()
    record("sklearn LogisticRegression", *_timed(lambda: lr_model.fit(x64, y).predict(x64_test)))
    gb_model = boosting()
    record("sklearn HistGradientBoosting", *_timed(lambda: gb_model.fit(x64, y).predict(x64_test)))

    def gb_thresholds() -> np.ndarray:
        post = GroupThresholds(criterion="demographic_parity").fit(
            scores=gb_model.decision_function(x64), y=y, sensitive_features=sex
        )
        return post.predict(
            scores=gb_model.decision_function(x64_test), sensitive_features=sex_test, seed=SEED
        )

    record("trustlab GroupThresholds, DP (gradient-boosting scores)", *_timed(gb_thresholds))

    def exponentiated() -> np.ndarray:
        mitigator = ExponentiatedGradient(logistic(), constraints=DemographicParity())
        mitigator.fit(x64, y, sensitive_features=sex)
        return np.asarray(mitigator.predict(x_test, random_state=SEED))

    record("Fairlearn ExponentiatedGradient, DP (LogisticRegression)", *_timed(exponentiated))

    def optimizer_on(make: Callable[[], Any]) -> Callable[[], np.ndarray]:
        def run() -> np.ndarray:
            post = ThresholdOptimizer(
                estimator=make(), constraints="demographic_parity", predict_method="auto"
            )
            post.fit(x64, y, sensitive_features=sex)
            return np.asarray(post.predict(x_test, sensitive_features=sex_test, random_state=SEED))

        return run

    record("Fairlearn ThresholdOptimizer, DP (LogisticRegression)", *_timed(optimizer_on(logistic)))
    record(
        "Fairlearn ThresholdOptimizer, DP (HistGradientBoosting)", *_timed(optimizer_on(boosting))
    )

    print()
    print("| method | accuracy | DP gap | EO gap | time (s) |")
    print("|---|---|---|---|---|")
    for name, row in results:
        print(
            f"| {name} | {row['accuracy']:.4f} | {row['dp_gap']:.4f} | {row['eo_gap']:.4f} | "
            f"{row['seconds']:.1f} |"
        )

    if args.plot:
        front = pareto_sweep(
            bounds=[0.0, 0.01, 0.02, 0.05, 0.1, 0.2],
            fit=lambda bound: GroupThresholds(tolerance=bound).fit(
                scores=train_margin, y=y, sensitive_features=sex
            ),
            evaluate=lambda m: m.evaluate(
                scores=test_margin, y=y_test, sensitive_features=sex_test, seed=SEED
            ),
        )
        plot_pareto(front, path=args.plot, label="GroupThresholds on the MLP")
        print(f"\nfront written to {args.plot}")


if __name__ == "__main__":
    main()

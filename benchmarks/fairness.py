"""Fairness on UCI Adult (sensitive attribute: sex): trustlab beside Fairlearn, in one run.

Every method is trained on the Adult train split (30,162 rows) and scored with hard predictions
on the test split (15,060 rows): accuracy, demographic-parity (DP) gap and equalized-odds (EO)
gap between the sexes (as :func:`trustlab.fairness.fairness_gap` and Fairlearn define them),
and wall time.

Tables:

1. Unconstrained models: trustlab's ``tabular`` network (one member, and an ensemble of five,
   trained by ``fit_tabular`` with early stopping), scikit-learn's logistic regression and
   gradient boosting.
2. DP gap <= 0.01 and 3. EO gap <= 0.01: trustlab's group thresholds on the tabular
   ensemble's scores and on the booster's, trustlab's exponentiated gradient over a tabular
   network, and every Fairlearn configuration: ExponentiatedGradient and ThresholdOptimizer,
   each on logistic regression and on gradient boosting.
4. Subgroup discovery (``find_slices``) and consistency of the tabular ensemble's predictions.

Run ``python benchmarks/fairness.py`` (full; ``--device cuda`` trains the networks on a GPU)
or ``--quick`` (5,000 training rows, fewer members and rounds).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from trustlab.core.data import load_dataset
from trustlab.core.models import build_model, fit_tabular
from trustlab.core.seeding import seed_everything
from trustlab.core.training import predict_logits
from trustlab.fairness import (
    ExponentiatedGradient,
    GroupThresholds,
    consistency_score,
    fairness_gap,
    find_slices,
)

SEED = 0
BOUND = 0.01
#: Tolerance of the group thresholds on the training scores, under the test bound.
TOLERANCE = 0.005
CRITERIA = {"DP": "demographic_parity", "EO": "equalized_odds"}

Row = dict[str, Any]


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
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 training rows, short runs")
    parser.add_argument("--device", default="cpu", help="torch device of the networks")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--members", type=int, default=5, help="members of the ensemble")
    parser.add_argument(
        "--frequency-scale",
        type=float,
        default=0.0,
        help="0: piecewise-linear numeric encodings; > 0: periodic ones with this sigma",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    train = load_dataset("adult", split="train", sensitive=("sex",))
    test = load_dataset("adult", split="test", sensitive=("sex",))
    x, y, sex = train.x, train.y, train.sensitive["sex"]
    if args.quick:
        rows = np.random.default_rng(SEED).choice(len(x), 5000, replace=False)
        x, y, sex = x[rows], y[rows], sex[rows]
    x_test, y_test, sex_test = test.x, test.y, test.sensitive["sex"]
    numeric = [j for j, name in enumerate(train.feature_names) if "=" not in name]
    members = 2 if args.quick else args.members
    eg_rounds = 8 if args.quick else 12

    def tabular(n_members: int, **extra: Any) -> torch.nn.Module:
        seed_everything(SEED)
        arguments = {
            "in_features": x.shape[1],
            "numeric_features": numeric,
            "frequency_scale": args.frequency_scale,
            **extra,
        }
        arguments["n_members"] = n_members
        return build_model("tabular", arguments=arguments).to(device)

    tables: dict[str, list[Row]] = {"unconstrained": [], "DP": [], "EO": []}

    def record(table: str, name: str, y_pred: np.ndarray, seconds: float) -> None:
        row: Row = {
            "method": name,
            **_scores(y_test, np.asarray(y_pred).astype(np.int64), sex_test),
        }
        row["seconds"] = seconds
        tables[table].append(row)
        print(
            f"  [{table}] {name}: accuracy {row['accuracy']:.4f}, DP gap {row['dp_gap']:.4f}, "
            f"EO gap {row['eo_gap']:.4f}, {seconds:.1f} s",
            flush=True,
        )

    # -- trustlab: the tabular network ---------------------------------------------------------
    single = tabular(1)
    _, seconds = _timed(lambda: fit_tabular(single, x=x, y=y, seed=SEED))
    record("unconstrained", "trustlab tabular (1 member)", _margin(single, x_test) > 0, seconds)
    ensemble = tabular(members)
    _, seconds = _timed(lambda: fit_tabular(ensemble, x=x, y=y, seed=SEED))
    ensemble_time = seconds
    record(
        "unconstrained",
        f"trustlab tabular ({members}-member ensemble)",
        _margin(ensemble, x_test) > 0,
        seconds,
    )
    train_margin, test_margin = _margin(ensemble, x), _margin(ensemble, x_test)

    # -- anchors (benchmark-only extra) --------------------------------------------------------
    from fairlearn.postprocessing import ThresholdOptimizer
    from fairlearn.reductions import (
        DemographicParity,
        EqualizedOdds,
    )
    from fairlearn.reductions import (
        ExponentiatedGradient as FairlearnEG,
    )
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    def logistic() -> Any:
        return LogisticRegression(max_iter=2000)

    def boosting() -> Any:
        return HistGradientBoostingClassifier(random_state=SEED)

    x64, x64_test = x.astype(np.float64), x_test.astype(np.float64)
    lr_model, gb_model = logistic(), boosting()
    record(
        "unconstrained",
        "sklearn LogisticRegression",
        *_timed(lambda: lr_model.fit(x64, y).predict(x64_test)),
    )
    record(
        "unconstrained",
        "sklearn HistGradientBoosting",
        *_timed(lambda: gb_model.fit(x64, y).predict(x64_test)),
    )
    gb_train, gb_test = gb_model.decision_function(x64), gb_model.decision_function(x64_test)

    for key, criterion in CRITERIA.items():

        def thresholds(
            train_scores: np.ndarray, test_scores: np.ndarray, criterion: str = criterion
        ) -> np.ndarray:
            post = GroupThresholds(criterion=criterion, tolerance=TOLERANCE).fit(
                scores=train_scores, y=y, sensitive_features=sex
            )
            return post.predict(scores=test_scores, sensitive_features=sex_test, seed=SEED)

        pred, seconds = _timed(lambda: thresholds(train_margin, test_margin))
        record(
            key,
            f"trustlab GroupThresholds (tabular ensemble; + {ensemble_time:.0f} s training)",
            pred,
            seconds,
        )
        record(
            key,
            "trustlab GroupThresholds (HistGradientBoosting scores)",
            *_timed(lambda: thresholds(gb_train, gb_test)),
        )

        def reduction(criterion: str = criterion) -> np.ndarray:
            mitigation = ExponentiatedGradient(
                criterion=criterion,
                bound=BOUND / 2,
                max_iter=eg_rounds,
                epochs=2,
                lr=1e-3,
                batch_size=512,
                weight_decay=1e-4,
                seed=SEED,
            )
            template = tabular(1, width=64, n_blocks=1)
            template.set_bin_edges(x)  # type: ignore[operator]
            mitigation.fit(model=template, x=x, y=y, sensitive_features=sex)
            print(
                f"    exponentiated gradient: {mitigation.n_oracle_calls_} best responses, "
                f"{len(mitigation.models_)} models, duality gap {mitigation.best_gap_:.4f}"
            )
            return mitigation.predict(x=x_test, seed=SEED)

        record(key, "trustlab ExponentiatedGradient (tabular, bound/2)", *_timed(reduction))

        moment = DemographicParity if key == "DP" else EqualizedOdds
        for label, make in (("LogisticRegression", logistic), ("HistGradientBoosting", boosting)):

            def fairlearn_eg(make: Callable[[], Any] = make, moment: Any = moment) -> np.ndarray:
                mitigator = FairlearnEG(make(), constraints=moment(difference_bound=BOUND / 2))
                mitigator.fit(x64, y, sensitive_features=sex)
                return np.asarray(mitigator.predict(x64_test, random_state=SEED))

            record(
                key, f"Fairlearn ExponentiatedGradient ({label}, bound/2)", *_timed(fairlearn_eg)
            )

            def fairlearn_to(
                make: Callable[[], Any] = make, criterion: str = criterion
            ) -> np.ndarray:
                post = ThresholdOptimizer(
                    estimator=make(), constraints=criterion, predict_method="auto"
                )
                post.fit(x64, y, sensitive_features=sex)
                return np.asarray(
                    post.predict(x64_test, sensitive_features=sex_test, random_state=SEED)
                )

            record(key, f"Fairlearn ThresholdOptimizer ({label})", *_timed(fairlearn_to))

    for table, rows in tables.items():
        print(f"\n{table}:\n")
        print("| method | accuracy | DP gap | EO gap | time (s) |")
        print("|---|---|---|---|---|")
        for row in rows:
            print(
                f"| {row['method']} | {row['accuracy']:.4f} | {row['dp_gap']:.4f} | "
                f"{row['eo_gap']:.4f} | {row['seconds']:.1f} |"
            )
        if table != "unconstrained":
            gap = "dp_gap" if table == "DP" else "eo_gap"
            within = [row for row in rows if row[gap] <= BOUND]
            if within:
                best = max(within, key=lambda row: row["accuracy"])
                print(f"\nmost accurate with {gap} <= {BOUND}: {best['method']}")

    # -- auditing ------------------------------------------------------------------------------
    predictions = (test_margin > 0).astype(np.int64)
    features = {
        "sex": test.sensitive["sex"],
        "race": load_dataset("adult", split="test", sensitive=("race",)).sensitive["race"],
        "age": np.digitize(
            test.x[:, train.feature_names.index("age")], [-1.0, 0.0, 1.0]
        ),  # standardized age in four bands
    }
    slices, seconds = _timed(
        lambda: find_slices(
            y_true=y_test, y_pred=predictions, features=features, max_order=2, top_k=5
        )
    )
    print(f"\nworst slices by error rate of the ensemble ({seconds:.1f} s):\n")
    print("| slice | size | error rate | 95% interval | rest | p (Bonferroni) |")
    print("|---|---|---|---|---|---|")
    for found in slices:
        print(
            f"| {found.name} | {found.size} | {found.rate:.3f} | "
            f"[{found.interval[0]:.3f}, {found.interval[1]:.3f}] | "
            f"{found.complement_rate:.3f} | {found.p_value:.1e} |"
        )
    value, seconds = _timed(lambda: consistency_score(x=x_test, y_pred=predictions, n_neighbors=5))
    print(f"\nconsistency (5 neighbours) of the ensemble's test predictions: {value:.4f}")


if __name__ == "__main__":
    main()

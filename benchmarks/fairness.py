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
   ensemble's scores and on the booster's; exponentiated gradient over one-member tabular
   networks, trustlab's and Fairlearn's (the same learner: a pre-trained network fine-tuned
   with the round's sample weights; ``--eg-seeds`` networks, 3 by default, each pre-trained
   with its own seed); and every Fairlearn configuration on scikit-learn
   models: ExponentiatedGradient and ThresholdOptimizer, each on logistic regression and on
   gradient boosting.
4. Subgroup discovery (``find_slices``) and consistency of the tabular ensemble's predictions.

The fitting budget is the same for every method. Fairlearn's moments bound each group's rate
against the overall rate; at ``difference_bound = 0.005`` and Adult's share of women (32%) that
allows a between-groups gap of 0.005 / 0.68 = 0.0074 on the training rows, so both
exponentiated gradients get ``bound = 0.005`` and the group thresholds ``tolerance = 0.0075``
(a between-groups gap). Fairlearn's ThresholdOptimizer enforces exact parity.

Run ``python benchmarks/fairness.py`` (full; ``--device cuda`` trains the networks on a GPU)
or ``--quick`` (5,000 training rows, fewer members and seeds).
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trustlab.core.data import load_dataset
from trustlab.core.models import build_model, fit_tabular
from trustlab.core.seeding import seed_everything
from trustlab.core.training import Step, predict_logits, train
from trustlab.fairness import (
    ExponentiatedGradient,
    GroupThresholds,
    consistency_score,
    fairness_gap,
    find_slices,
)

SEED = 0
#: The bound on the test split's between-groups gap.
BOUND = 0.01
#: Fairlearn-style moment bound (group against overall rate) of both exponentiated gradients.
MOMENT_BOUND = 0.005
#: Between-groups gap the group thresholds may have on the training rows: what MOMENT_BOUND
#: allows between Adult's two groups (0.005 / 0.68, see the module docstring).
TOLERANCE = 0.0075
#: Fine-tuning of the pre-trained network in each best response (both exponentiated
#: gradients): one epoch of Adam, at the smaller of the learning rates 1e-4 and 1e-3 with which
#: trustlab's game converges on the training rows (at 1e-4, equalized odds ends 12 rounds with
#: a duality gap above 5: the fine-tuning moves the network too little to reach the bound).
ORACLE: dict[str, dict[str, Any]] = {
    criterion: {"epochs": 1, "lr": lr, "batch_size": 256, "weight_decay": 1e-4}
    for criterion, lr in (("demographic_parity", 1e-4), ("equalized_odds", 1e-3))
}
#: Most rounds of trustlab's exponentiated gradient: Fairlearn's default ``max_iter``. Both
#: games stop earlier once their duality gap is below ``nu``.
EG_ROUNDS = 50
CRITERIA = {"DP": "demographic_parity", "EO": "equalized_odds"}

Row = dict[str, Any]
#: A fitted randomised classifier: seed -> hard predictions on the test split.
Predict = Callable[[int], np.ndarray]
#: Seeded draws of every randomised classifier; its row shows the means over the draws.
DRAWS = 10


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


def _noise_floor(
    criterion: str, y: np.ndarray, y_pred: np.ndarray, sex: np.ndarray, *, draws: int = 20_000
) -> tuple[float, float]:
    """Mean and 95th percentile of the test gap of a classifier that is exactly fair on the
    population: each group's rate in every cell the criterion conditions on (all rows for DP;
    y = 1 and y = 0 for EO) is binomial around one shared rate, the overall rate of ``y_pred``
    in that cell, with the test split's cell sizes."""
    rng = np.random.default_rng(SEED)
    cells = [np.ones_like(y, dtype=bool)] if criterion == "DP" else [y == 1, y == 0]
    gaps = np.zeros(draws)
    for cell in cells:
        rate = float(y_pred[cell].mean())
        sizes = [int(np.sum(cell & (sex == group))) for group in np.unique(sex)]
        rates = np.stack([rng.binomial(n, rate, size=draws) / n for n in sizes])
        gaps = np.maximum(gaps, rates.max(axis=0) - rates.min(axis=0))
    return float(gaps.mean()), float(np.quantile(gaps, 0.95))


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _margin(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    logits = predict_logits(model, x)
    return (logits[:, 1] - logits[:, 0]).numpy().astype(np.float64)


class _FineTuned:
    """A scikit-learn classifier for Fairlearn's reductions, with the learner of trustlab's
    best responses: each ``fit`` fine-tunes a copy of a pre-trained network (``ORACLE``) on
    the sample weights it is given. Fairlearn clones it (``get_params``) before every fit."""

    def __init__(self, *, template: torch.nn.Module, oracle: dict[str, Any], seed: int) -> None:
        self.template = template
        self.oracle = oracle
        self.seed = seed

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"template": self.template, "oracle": self.oracle, "seed": self.seed}

    def set_params(self, **params: Any) -> _FineTuned:
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def fit(self, x: np.ndarray, y: Any, sample_weight: Any = None) -> _FineTuned:
        labels = torch.from_numpy(np.array(y, dtype=np.int64))
        weight = np.ones(len(labels)) if sample_weight is None else np.asarray(sample_weight)
        weight = len(weight) * weight / max(float(weight.sum()), 1e-300)
        self.model_ = copy.deepcopy(self.template)
        train(
            self.model_,
            data={
                "x": torch.as_tensor(np.asarray(x, dtype=np.float32)),
                "y": labels,
                "weight": torch.as_tensor(weight, dtype=torch.float32),
            },
            optimizer="adam",
            loss=_weighted_cross_entropy,
            seed=self.seed,
            owner="benchmark oracle",
            **self.oracle,
        )
        self.model_.eval()
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (_margin(self.model_, np.asarray(x, dtype=np.float32)) > 0).astype(np.int64)


def _weighted_cross_entropy(step: Step) -> torch.Tensor:
    per_row = F.cross_entropy(step.model(step.batch["x"]), step.batch["y"], reduction="none")
    weight = step.batch["weight"]
    return (per_row * weight).sum() / max(len(weight), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 training rows, short runs")
    parser.add_argument("--device", default="cpu", help="torch device of the networks")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--members", type=int, default=5, help="members of the ensemble")
    parser.add_argument(
        "--eg-seeds",
        type=int,
        default=3,
        help="pre-trained networks (seeds) both exponentiated gradients run over",
    )
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
    eg_seeds = min(args.eg_seeds, 2) if args.quick else args.eg_seeds

    def tabular(n_members: int, *, seed: int = SEED, **extra: Any) -> torch.nn.Module:
        seed_everything(seed)
        arguments = {
            "in_features": x.shape[1],
            "numeric_features": numeric,
            "frequency_scale": args.frequency_scale,
            **extra,
        }
        arguments["n_members"] = n_members
        return build_model("tabular", arguments=arguments).to(device)

    tables: dict[str, list[Row]] = {"unconstrained": [], "DP": [], "EO": []}

    def record(
        table: str, name: str, y_pred: np.ndarray | Predict | list[Predict], seconds: float
    ) -> None:
        """One row: a deterministic method's predictions, or a randomised one's ``predict``
        (seed -> predictions), whose metrics are the means over ``DRAWS`` seeded draws, or a
        list of those (one per training seed), whose metrics are the means over all draws."""
        fitted = y_pred if isinstance(y_pred, list) else [y_pred]
        per_fit = []
        for one in fitted:
            if callable(one):
                per_fit.append([np.asarray(one(seed)).astype(np.int64) for seed in range(DRAWS)])
            else:
                per_fit.append([np.asarray(one).astype(np.int64)])
        draws = [draw for fit in per_fit for draw in fit]
        scores = [_scores(y_test, draw, sex_test) for draw in draws]
        row: Row = {"method": name, "draws": len(draws)}
        if len(per_fit) > 1:
            accuracies = [np.mean([np.mean(draw == y_test) for draw in fit]) for fit in per_fit]
            print(f"    per training seed: accuracy {', '.join(f'{a:.4f}' for a in accuracies)}")
        for metric in ("accuracy", "dp_gap", "eo_gap"):
            row[metric] = float(np.mean([score[metric] for score in scores]))
        gap = {"DP": "dp_gap", "EO": "eo_gap"}.get(table)
        if gap is not None:
            row["within"] = sum(score[gap] <= BOUND for score in scores)
        row["seconds"] = seconds
        tables[table].append(row)
        print(
            f"  [{table}] {name}: accuracy {row['accuracy']:.4f}, DP gap {row['dp_gap']:.4f}, "
            f"EO gap {row['eo_gap']:.4f}, {seconds:.1f} s",
            flush=True,
        )

    # -- trustlab: the tabular network ---------------------------------------------------------
    single = tabular(1)
    _, single_time = _timed(lambda: fit_tabular(single, x=x, y=y, seed=SEED))
    record("unconstrained", "trustlab tabular (1 member)", _margin(single, x_test) > 0, single_time)
    # The networks both exponentiated gradients fine-tune: this one and eg_seeds - 1 others.
    pre_trained_nets = [single]
    for seed in range(SEED + 1, SEED + eg_seeds):
        net = tabular(1, seed=seed)
        fit_tabular(net, x=x, y=y, seed=seed)
        pre_trained_nets.append(net)
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
        ) -> Predict:
            post = GroupThresholds(criterion=criterion, tolerance=TOLERANCE).fit(
                scores=train_scores, y=y, sensitive_features=sex
            )
            return lambda seed: post.predict(
                scores=test_scores, sensitive_features=sex_test, seed=seed
            )

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

        def reduction(criterion: str, template: torch.nn.Module, seed: int) -> Predict:
            mitigation = ExponentiatedGradient(
                criterion=criterion,
                bound=MOMENT_BOUND,
                max_iter=EG_ROUNDS,
                seed=seed,
                warm_start=False,
                **ORACLE[criterion],
            )
            mitigation.fit(model=template, x=x, y=y, sensitive_features=sex)
            print(
                f"    exponentiated gradient: {mitigation.n_oracle_calls_} best responses, "
                f"{len(mitigation.models_)} models, duality gap {mitigation.best_gap_:.4f}"
            )
            return lambda seed: mitigation.predict(x=x_test, seed=seed)

        moment = DemographicParity if key == "DP" else EqualizedOdds

        def fairlearn_tabular(
            criterion: str, template: torch.nn.Module, seed: int, moment: Any = moment
        ) -> Predict:
            mitigator = FairlearnEG(
                _FineTuned(template=template, oracle=ORACLE[criterion], seed=seed),
                constraints=moment(difference_bound=MOMENT_BOUND),
            )
            mitigator.fit(x, y, sensitive_features=sex)
            print(
                f"    Fairlearn exponentiated gradient: {mitigator.n_oracle_calls_} best "
                f"responses, {len(mitigator.predictors_)} models"
            )
            return lambda seed: np.asarray(mitigator.predict(x_test, random_state=seed))

        pre_trained = f"pre-trained tabular, {eg_seeds} seeds; + {single_time:.0f} s training each"
        for label, run in (("trustlab", reduction), ("Fairlearn", fairlearn_tabular)):
            fits = [
                _timed(lambda net=net, k=k, run=run, c=criterion: run(c, net, SEED + k))
                for k, net in enumerate(pre_trained_nets)
            ]
            record(
                key,
                f"{label} ExponentiatedGradient ({pre_trained})",
                [predict for predict, _ in fits],
                float(np.mean([seconds for _, seconds in fits])),
            )

        for label, make in (("LogisticRegression", logistic), ("HistGradientBoosting", boosting)):

            def fairlearn_eg(make: Callable[[], Any] = make, moment: Any = moment) -> Predict:
                mitigator = FairlearnEG(make(), constraints=moment(difference_bound=MOMENT_BOUND))
                mitigator.fit(x64, y, sensitive_features=sex)
                return lambda seed: np.asarray(mitigator.predict(x64_test, random_state=seed))

            record(key, f"Fairlearn ExponentiatedGradient ({label})", *_timed(fairlearn_eg))

            def fairlearn_to(make: Callable[[], Any] = make, criterion: str = criterion) -> Predict:
                post = ThresholdOptimizer(
                    estimator=make(), constraints=criterion, predict_method="auto"
                )
                post.fit(x64, y, sensitive_features=sex)
                return lambda seed: np.asarray(
                    post.predict(x64_test, sensitive_features=sex_test, random_state=seed)
                )

            record(key, f"Fairlearn ThresholdOptimizer ({label})", *_timed(fairlearn_to))

    unconstrained = (test_margin > 0).astype(np.int64)
    for table, rows in tables.items():
        print(f"\n{table}:\n")
        if table != "unconstrained":
            mean_gap, high_gap = _noise_floor(table, y_test, unconstrained, sex_test)
            print(
                f"noise floor: a classifier exactly {table}-fair on the population has a mean "
                f"test gap of {mean_gap:.4f} (95th percentile {high_gap:.4f})\n"
            )
        if table == "unconstrained":
            print("| method | accuracy | DP gap | EO gap | time (s) |")
            print("|---|---|---|---|---|")
        else:
            print(f"| method | accuracy | DP gap | EO gap | draws with gap <= {BOUND} | time (s) |")
            print("|---|---|---|---|---|---|")
        for row in rows:
            within = "" if table == "unconstrained" else f" {row['within']}/{row['draws']} |"
            print(
                f"| {row['method']} | {row['accuracy']:.4f} | {row['dp_gap']:.4f} | "
                f"{row['eo_gap']:.4f} |{within} {row['seconds']:.1f} |"
            )
        if table != "unconstrained":
            gap = "dp_gap" if table == "DP" else "eo_gap"
            print()
            for limit in (BOUND, mean_gap):
                within_rows = [row for row in rows if row[gap] <= limit]
                best = max(within_rows, key=lambda row: row["accuracy"], default=None)
                found = "none" if best is None else best["method"]
                print(f"most accurate with a mean {gap} <= {limit:.4f}: {found}")

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

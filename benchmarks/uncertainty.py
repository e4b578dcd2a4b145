"""Uncertainty on scikit-learn's digits: trustlab beside MAPIE, TorchCP and pytorch-ood.

One digits CNN is trained on a small split (so that it errs), and every row below runs on the
same model outputs:

* **Conformal sets** (alpha = 0.1): trustlab's LAC, APS and RAPS (deterministic scores, empty
  sets allowed, as the anchors build them) beside MAPIE's ``SplitConformalClassifier`` (LAC)
  and TorchCP's ``SplitPredictor`` with ``THR``, ``APS`` and ``RAPS`` (``randomized=False``)
  on the same probabilities: the number of test rows whose sets differ, coverage, mean set
  size and the time of calibration plus prediction.
* **OOD scores**: trustlab's MSP, energy, MaxLogit and Mahalanobis beside pytorch-ood's
  ``MaxSoftmax``, ``EnergyBased``, ``MaxLogit`` and ``Mahalanobis`` (``eps=0``) on the same
  logits and penultimate features: the largest absolute difference of the scores (pytorch-ood's
  Mahalanobis is rescaled by ``2 N``, see :class:`trustlab.uncertainty.Mahalanobis`), both
  AUROCs (in-distribution test digits against synthetic noise and strokes) and the time.
* **Temperature scaling**: the fitted temperature and the test ECE and NLL before and after.

pytorch-ood and TorchCP declare torchvision (and TorchCP torchsort, torch_geometric,
transformers), which the pinned torch cannot have; they are installed with ``--no-deps``
(``make bench-install``). When an import fails only on such a module, the anchor is imported
again with an empty placeholder for it (their detector and conformal code never uses those
modules), and the script says so; if it still fails, the rows are skipped with the reason.

Run ``.venv/bin/python benchmarks/uncertainty.py`` (``--quick``: fewer examples and repeats;
``--device cuda`` on a GPU; ``--conformal-only``: the conformal rows alone).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import time
import types
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from trustlab.core.data import load_dataset
from trustlab.core.models import build_model
from trustlab.core.training import fit_classifier, seed_everything
from trustlab.tasks.ood_detection import synthetic_inputs
from trustlab.uncertainty import (
    APS,
    LAC,
    MSP,
    RAPS,
    Energy,
    Mahalanobis,
    MaxLogit,
    TemperatureScaling,
    auroc,
    empirical_coverage,
    expected_calibration_error,
    mean_set_size,
    model_outputs,
    negative_log_likelihood,
)

SEED = 0
ALPHA = 0.1
#: Modules the anchors import at package level but never use in the code benchmarked here.
OPTIONAL = ("torchvision", "torchmetrics", "torchsort", "torch_geometric", "transformers")


class _Placeholder(types.ModuleType):
    """An empty module whose every attribute is a do-nothing class."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__path__: list[str] = []

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {"__init__": lambda self, *a, **k: None})


class _PlaceholderFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def __init__(self, roots: tuple[str, ...]) -> None:
        self.roots = roots

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname.split(".")[0] in self.roots:
            return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
        return None

    def create_module(self, spec: Any) -> types.ModuleType:
        return _Placeholder(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def import_anchor(name: str) -> tuple[Any, str]:
    """Import an anchor package; ``(module or None, a note on how)``."""
    for finder in [f for f in sys.meta_path if isinstance(f, _PlaceholderFinder)]:
        sys.meta_path.remove(finder)
    for module in [m for m in sys.modules if isinstance(sys.modules[m], _Placeholder)]:
        del sys.modules[module]
    try:
        return importlib.import_module(name), "imported as is"
    except ImportError as err:
        first = str(err)
    missing = tuple(root for root in OPTIONAL if importlib.util.find_spec(root) is None)
    for module in [m for m in sys.modules if m.split(".")[0] == name]:
        del sys.modules[module]
    finder = _PlaceholderFinder(missing)
    sys.meta_path.append(finder)
    try:
        module = importlib.import_module(name)
    except Exception as err:  # the anchor is broken beyond the placeholders: skip its rows
        return None, f"skipped: {first}; with placeholders: {err}"
    finally:
        sys.meta_path.remove(finder)
    return module, f"imported with placeholders for {', '.join(missing)} ({first})"


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
    """The result of ``fn`` and its median wall time in milliseconds over ``repeats`` calls."""
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return out, 1000 * float(np.median(times))


def _data(quick: bool, device: str) -> dict[str, Any]:
    ds = load_dataset("digits")
    x, y = np.asarray(ds.x, np.float32), np.asarray(ds.y, np.int64)
    order = np.random.default_rng(SEED).permutation(len(x))
    n_train = 200 if quick else 300
    train, cal, test = order[:n_train], order[n_train : n_train + 600], order[n_train + 600 :]
    seed_everything(SEED)
    model = build_model("digits-cnn").to(device)
    fit_classifier(model, x[train], y[train], epochs=8, batch_size=64, seed=SEED)
    ood_x = synthetic_inputs(400, shape=x.shape[1:], rng=np.random.default_rng(SEED))
    out = {
        name: model_outputs(model=model, x=data)
        for name, data in (("train", x[train]), ("cal", x[cal]), ("test", x[test]), ("ood", ood_x))
    }
    return {"model": model, "y_train": y[train], "y_cal": y[cal], "y_test": y[test], "out": out}


def _probs(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.double(), dim=1).numpy()


class FixedProbabilities:
    """A prefit scikit-learn classifier whose inputs are row indices of a probability table."""

    _estimator_type = "classifier"

    def __init__(self, table: np.ndarray) -> None:
        self.table = table
        self.classes_ = np.arange(table.shape[1])
        self.n_features_in_ = 1
        self.fitted_ = True

    def fit(self, x: Any, y: Any) -> FixedProbabilities:
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        return self.table[np.asarray(x)[:, 0].astype(int)]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.predict_proba(x).argmax(axis=1)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"table": self.table}

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        return Tags(
            estimator_type="classifier",
            target_tags=TargetTags(required=True),
            classifier_tags=ClassifierTags(),
        )


def conformal_rows(data: dict[str, Any], *, repeats: int, device: str) -> None:
    p_cal, p_test = _probs(data["out"]["cal"].logits), _probs(data["out"]["test"].logits)
    y_cal, y_test = data["y_cal"], data["y_test"]
    ours = {
        "lac": LAC(alpha=ALPHA),
        "aps": APS(alpha=ALPHA, randomized=False, allow_empty=True),
        "raps": RAPS(alpha=ALPHA, lam=0.05, k_reg=2, randomized=False, allow_empty=True),
    }
    results: dict[str, tuple[np.ndarray, float]] = {}
    for name, method in ours.items():
        results[name] = _timed(
            lambda m=method: m.fit(probs=p_cal, y=y_cal).predict(probs=p_test), repeats
        )
    print(f"\nConformal sets, alpha={ALPHA}: {len(y_cal)} calibration, {len(y_test)} test rows")
    header = f"{'method':<6} {'anchor':<8} {'rows differ':>11} {'coverage':>17} {'mean size':>15}"
    print(header + f" {'ms ours':>8} {'ms anchor':>9} {'speed-up':>8}")

    def row(name: str, anchor: str, sets: np.ndarray | None, ms: float | None) -> None:
        mine, mine_ms = results[name]
        if sets is None or ms is None:
            print(f"{name:<6} {anchor:<8} {'-':>11} {'-':>17} {'-':>15} {mine_ms:8.2f}")
            return
        differ = int((sets != mine).any(axis=1).sum())
        covs = [empirical_coverage(sets=s, y_true=y_test) for s in (mine, sets)]
        cov = f"{covs[0]:.4f}/{covs[1]:.4f}"
        size = f"{mean_set_size(sets=mine):.3f}/{mean_set_size(sets=sets):.3f}"
        print(
            f"{name:<6} {anchor:<8} {differ:>11d} {cov:>17} {size:>15} {mine_ms:8.2f} "
            f"{ms:9.2f} {ms / mine_ms:7.1f}x"
        )

    mapie, note = import_anchor("mapie")
    print(f"  MAPIE: {note}")
    if mapie is not None:
        from mapie.classification import SplitConformalClassifier

        table = np.concatenate([p_cal, p_test])
        index = np.arange(len(table))[:, None]

        def run_mapie() -> np.ndarray:
            clf = SplitConformalClassifier(
                estimator=FixedProbabilities(table),
                confidence_level=1 - ALPHA,
                conformity_score="lac",
                prefit=True,
            )
            clf.conformalize(index[: len(p_cal)], y_cal)
            return np.asarray(clf.predict_set(index[len(p_cal) :])[1][:, :, 0], dtype=bool)

        try:
            sets, ms = _timed(run_mapie, repeats)
            row("lac", "MAPIE", sets, ms)
        except Exception as err:  # an API change in the anchor: say so, keep going
            print(f"  MAPIE LAC skipped: {type(err).__name__}: {err}")
    torchcp, note = import_anchor("torchcp")
    print(f"  TorchCP: {note}")
    if torchcp is not None:
        from torchcp.classification.predictor import SplitPredictor
        from torchcp.classification.score import APS as TAPS
        from torchcp.classification.score import RAPS as TRAPS
        from torchcp.classification.score import THR

        t_cal = torch.from_numpy(p_cal).to(device)
        t_test = torch.from_numpy(p_test).to(device)
        t_y = torch.from_numpy(y_cal).to(device)
        anchors = {
            "lac": lambda: THR(score_type="identity"),
            "aps": lambda: TAPS(score_type="identity", randomized=False),
            "raps": lambda: TRAPS(score_type="identity", randomized=False, penalty=0.05, kreg=2),
        }
        for name, score in anchors.items():

            def run(score: Callable[[], Any] = score) -> np.ndarray:
                predictor = SplitPredictor(score_function=score(), model=None)
                predictor.calculate_threshold(t_cal, t_y, ALPHA)
                return np.asarray(predictor.predict_with_logits(t_test).cpu().numpy(), bool)

            try:
                sets, ms = _timed(run, repeats)
                row(name, "TorchCP", sets, ms)
            except Exception as err:
                print(f"  TorchCP {name} skipped: {type(err).__name__}: {err}")


def ood_rows(data: dict[str, Any], *, repeats: int, device: str) -> None:
    out = data["out"]
    logits = torch.cat([out["test"].logits, out["ood"].logits])
    feats = torch.cat([out["test"].features, out["ood"].features])
    is_ood = np.r_[np.zeros(len(out["test"].logits)), np.ones(len(out["ood"].logits))]
    n_fit = len(out["train"].features)
    # Features that never fire on the fitting data make the covariance singular: trustlab
    # inverts it with a pseudo-inverse (as Lee et al.'s code, through scikit-learn), pytorch-ood
    # adds 1e-6 to its diagonal, so the two differ by construction there. Compare on the
    # features that vary on the fitting data.
    live = out["train"].features.std(dim=0) > 0
    fit_feats, feats = out["train"].features[:, live], feats[:, live]
    mahalanobis = Mahalanobis().fit_outputs(features=fit_feats, y=data["y_train"])
    ours: dict[str, Callable[[], np.ndarray]] = {
        "MSP": lambda: MSP().score_outputs(logits=logits),
        "energy": lambda: Energy().score_outputs(logits=logits),
        "MaxLogit": lambda: MaxLogit().score_outputs(logits=logits),
        "Mahalanobis": lambda: mahalanobis.score_outputs(features=feats),
    }
    print(
        f"\nOOD scores: {len(out['test'].logits)} test digits against "
        f"{len(out['ood'].logits)} synthetic inputs (noise and strokes); Mahalanobis on the "
        f"{int(live.sum())} of {len(live)} features that vary on the {n_fit} fitting examples"
    )
    print(
        f"{'detector':<12} {'max |diff|':>11} {'AUROC ours':>10} {'AUROC anchor':>12} "
        f"{'ms ours':>8} {'ms anchor':>9} {'speed-up':>8}"
    )
    ood, note = import_anchor("pytorch_ood")
    print(f"  pytorch-ood: {note}")
    anchors: dict[str, Callable[[], np.ndarray]] = {}
    scale = {"Mahalanobis": 2.0 * n_fit}
    if ood is not None:
        from pytorch_ood.detector import EnergyBased, MaxSoftmax
        from pytorch_ood.detector import Mahalanobis as PMahalanobis
        from pytorch_ood.detector import MaxLogit as PMaxLogit

        d_logits, d_feats = logits.to(device), feats.to(device)
        pm = PMahalanobis(model=None, eps=0.0).fit_features(
            fit_feats.to(device),
            torch.from_numpy(data["y_train"]).to(device),
            device=device,
        )
        anchors = {
            "MSP": lambda: MaxSoftmax(model=None).predict_features(d_logits).cpu().double().numpy(),
            "energy": lambda: (
                EnergyBased(model=None).predict_features(d_logits).cpu().double().numpy()
            ),
            "MaxLogit": lambda: (
                PMaxLogit(model=None).predict_features(d_logits).cpu().double().numpy()
            ),
            "Mahalanobis": lambda: pm.predict_features(d_feats).cpu().double().numpy(),
        }
    for name, fn in ours.items():
        mine, mine_ms = _timed(fn, repeats)
        mine_auc = auroc(is_ood=is_ood, scores=mine)
        if name not in anchors:
            print(f"{name:<12} {'-':>11} {mine_auc:10.4f} {'-':>12} {mine_ms:8.2f}")
            continue
        try:
            theirs, ms = _timed(anchors[name], repeats)
        except Exception as err:
            print(f"{name:<12} skipped: {type(err).__name__}: {err}")
            continue
        diff = float(np.max(np.abs(mine - theirs * scale.get(name, 1.0))))
        rel = ""
        if name in scale:
            from scipy.stats import spearmanr

            diff = diff / float(np.max(np.abs(mine)))
            rel = f" (relative diff; rank correlation {spearmanr(mine, theirs).statistic:.6f})"
        print(
            f"{name:<12} {diff:11.2e} {mine_auc:10.4f} "
            f"{auroc(is_ood=is_ood, scores=theirs):12.4f} {mine_ms:8.2f} {ms:9.2f} "
            f"{ms / mine_ms:7.1f}x{rel}"
        )


def temperature_rows(data: dict[str, Any]) -> None:
    out = data["out"]
    scaler = TemperatureScaling().fit(logits=out["cal"].logits, y=data["y_cal"])
    before = _probs(out["test"].logits)
    after = scaler.predict_proba(logits=out["test"].logits)
    y = data["y_test"]
    print("\nTemperature scaling, fitted on the calibration split, measured on the test split")
    print(f"  T = {scaler.temperature_:.4f}")
    for label, probs in (("before", before), ("after", after)):
        print(
            f"  {label:<6}: ECE {expected_calibration_error(y_true=y, probs=probs):.4f}, "
            f"NLL {negative_log_likelihood(y_true=y, probs=probs):.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer examples and repeats")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument(
        "--conformal-only", action="store_true", help="only the conformal rows (no OOD, no ECE)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    repeats = 3 if args.quick else 15
    data = _data(args.quick, args.device)
    print(
        f"device {args.device}; digits CNN test accuracy "
        f"{float((data['out']['test'].logits.argmax(1).numpy() == data['y_test']).mean()):.3f}"
    )
    conformal_rows(data, repeats=repeats, device=args.device)
    if args.conformal_only:
        return
    ood_rows(data, repeats=repeats, device=args.device)
    temperature_rows(data)


if __name__ == "__main__":
    main()

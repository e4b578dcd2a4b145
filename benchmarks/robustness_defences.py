"""trustlab's adversarial training and randomized smoothing beside ART's, on the same digits.

Rows (the same initial weights, data, epochs, batch size and optimizer for both libraries):

- PGD adversarial training: trustlab ``PGDAdversarialTraining`` against ART
  ``AdversarialTrainerMadryPGD``, with the same eps, steps and step size.
- TRADES: trustlab ``TRADES`` against ART ``AdversarialTrainerTRADESPyTorch`` (beta 6, its
  inner PGD configured like trustlab's).
- Fast adversarial training: trustlab ``FastAdversarialTraining`` (guard off, so both train on
  every example) against ART ``AdversarialTrainerFBFPyTorch``. ART replaces the optimizer's
  learning rate by the paper's cyclic schedule (peak 0.2); trustlab keeps the optimizer's.
- A normally trained model, for reference.

Each trained model is evaluated with trustlab's PGD (20 steps, evaluation mode) at the training
eps on held-out digits. Randomized smoothing: one base classifier trained with Gaussian noise,
certified by trustlab ``Smooth.certify_batch`` and by ART ``PyTorchRandomizedSmoothing.certify``
with the same number of noise samples (ART uses ``n`` for both selection and estimation, so
trustlab runs with ``n0 = n`` here) and alpha; the table gives the certified accuracy at
several L2 radii. Times are wall-clock seconds on one torch thread.

Run: ``.venv/bin/python benchmarks/robustness_defences.py`` (``--quick`` for a short run).
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from trustlab.core.data import load_dataset, train_test_split_indices
from trustlab.core.models import build_model
from trustlab.core.training import fit_classifier, seed_everything
from trustlab.robustness import (
    PGD,
    TRADES,
    FastAdversarialTraining,
    PGDAdversarialTraining,
    Smooth,
    certified_accuracy_curve,
)

EPS = 0.1
BATCH = 64
LR = 2e-3


@dataclass
class Row:
    method: str
    library: str
    clean: float
    robust: float
    seconds: float


def digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    data = load_dataset("digits")
    x = torch.as_tensor(data.x, dtype=torch.float32)
    y = torch.as_tensor(data.y, dtype=torch.int64)
    train, test = train_test_split_indices(len(y), test_fraction=0.25, seed=0, stratify=data.y)
    tr, te = torch.as_tensor(train), torch.as_tensor(test)
    return x[tr], y[tr], x[te], y[te]


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    result = PGD(eps=EPS, steps=20, early_stop=True).generate(model=model, x=x, y=y)
    return result.clean_accuracy, result.robust_accuracy


def art_classifier(model: nn.Module, *, optimizer: str) -> object:
    from art.estimators.classification import PyTorchClassifier

    params = model.parameters()
    opt = (
        torch.optim.Adam(params, lr=LR)
        if optimizer == "adam"
        else torch.optim.SGD(params, lr=LR, momentum=0.9)
    )
    return PyTorchClassifier(
        model=model,
        loss=nn.CrossEntropyLoss(),
        optimizer=opt,
        input_shape=(1, 8, 8),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def adversarial_training_rows(
    *, epochs: int, steps: int, data: tuple[torch.Tensor, ...], n_eval: int
) -> list[Row]:
    from art.attacks.evasion import ProjectedGradientDescent
    from art.defences.trainer import (
        AdversarialTrainerFBFPyTorch,
        AdversarialTrainerMadryPGD,
        AdversarialTrainerTRADESPyTorch,
    )

    x_train, y_train, x_test, y_test = data
    x_eval, y_eval = x_test[:n_eval], y_test[:n_eval]
    xn, yn = x_train.numpy(), y_train.numpy()
    step = 2.5 * EPS / steps
    seed_everything(0)
    initial = build_model("digits-cnn")
    rows: list[Row] = []

    def add(method: str, library: str, model: nn.Module, seconds: float) -> None:
        clean, robust = evaluate(model.eval(), x_eval, y_eval)
        rows.append(Row(method, library, clean, robust, seconds))
        print(f"  {method:<28} {library:<9} clean {clean:.3f} robust {robust:.3f} {seconds:.1f}s")

    model = copy.deepcopy(initial)
    seconds = timed(
        lambda: fit_classifier(model, x_train, y_train, epochs=epochs, lr=LR, batch_size=BATCH)
    )
    add("standard training", "trustlab", model, seconds)

    model = copy.deepcopy(initial)
    trainer = PGDAdversarialTraining(
        eps=EPS, steps=steps, step_size=step, epochs=epochs, lr=LR, batch_size=BATCH
    )
    add(
        "PGD adversarial training",
        "trustlab",
        model,
        timed(lambda: trainer.fit(model=model, x=x_train, y=y_train)),
    )
    model = copy.deepcopy(initial)
    art = AdversarialTrainerMadryPGD(
        art_classifier(model, optimizer="adam"),
        nb_epochs=epochs,
        batch_size=BATCH,
        eps=EPS,
        eps_step=step,
        max_iter=steps,
        num_random_init=1,
    )
    add("PGD adversarial training", "ART", model, timed(lambda: art.fit(xn, yn)))

    model = copy.deepcopy(initial)
    trades = TRADES(
        eps=EPS, beta=6.0, steps=steps, step_size=step, epochs=epochs, lr=LR, batch_size=BATCH
    )
    add("TRADES", "trustlab", model, timed(lambda: trades.fit(model=model, x=x_train, y=y_train)))
    model = copy.deepcopy(initial)
    classifier = art_classifier(model, optimizer="adam")
    inner = ProjectedGradientDescent(
        classifier, eps=EPS, eps_step=step, max_iter=steps, verbose=False
    )
    art_trades = AdversarialTrainerTRADESPyTorch(classifier, inner, beta=6.0)
    add(
        "TRADES",
        "ART",
        model,
        timed(lambda: art_trades.fit(xn, yn, batch_size=BATCH, nb_epochs=epochs)),
    )

    model = copy.deepcopy(initial)
    fast = FastAdversarialTraining(eps=EPS, guard=False, epochs=epochs, lr=LR, batch_size=BATCH)
    add(
        "fast AT (FGSM, random start)",
        "trustlab",
        model,
        timed(lambda: fast.fit(model=model, x=x_train, y=y_train)),
    )
    model = copy.deepcopy(initial)
    fbf = AdversarialTrainerFBFPyTorch(art_classifier(model, optimizer="sgd"), eps=EPS)
    add(
        "fast AT (FGSM, random start)",
        "ART",
        model,
        timed(
            lambda: fbf.fit(
                xn, np.eye(10, dtype=np.float32)[yn], batch_size=BATCH, nb_epochs=epochs
            )
        ),
    )
    return rows


def noise_trained(*, sigma: float, epochs: int, x: torch.Tensor, y: torch.Tensor) -> nn.Module:
    """A digits CNN trained on Gaussian-noise copies of its inputs (the base of smoothing)."""
    seed_everything(1)
    model = build_model("digits-cnn")
    generator = torch.Generator().manual_seed(1)
    copies = 4
    xs = x.repeat(copies, 1, 1, 1)
    xs = xs + sigma * torch.randn(xs.shape, generator=generator)
    fit_classifier(model, xs, y.repeat(copies), epochs=epochs, lr=LR, batch_size=128)
    return model.eval()


def _bound_without_statsmodels(cls: type) -> None:
    """ART computes its Clopper-Pearson bound with statsmodels' ``proportion_confint(k, n,
    alpha=2 * alpha, method="beta")``. Where statsmodels is missing, use the same quantity from
    scipy: the ``alpha`` quantile of Beta(k, n - k + 1) (0 when k = 0)."""
    try:
        import statsmodels  # noqa: F401
    except ImportError:
        from scipy.stats import beta

        def lower(self: object, n_class_samples: int, n_total_samples: int) -> float:
            if n_class_samples == 0:
                return 0.0
            alpha = float(self.alpha)  # type: ignore[attr-defined]
            k, n = int(n_class_samples), int(n_total_samples)
            return float(beta.ppf(alpha, k, n - k + 1))

        cls._lower_confidence_bound = lower  # type: ignore[attr-defined]


def smoothing_rows(
    *, sigma: float, n: int, n_inputs: int, epochs: int, data: tuple[torch.Tensor, ...]
) -> None:
    from art.estimators.certification.randomized_smoothing import PyTorchRandomizedSmoothing

    x_train, y_train, x_test, y_test = data
    base = noise_trained(sigma=sigma, epochs=epochs, x=x_train, y=y_train)
    x, y = x_test[:n_inputs], y_test[:n_inputs]
    grid = [0.0, 0.25, 0.5, 0.75, 1.0]
    alpha = 0.001

    smooth = Smooth(num_classes=10, sigma=sigma)
    start = time.perf_counter()
    ours = smooth.certify_batch(model=base, x=x, n0=n, n=n, alpha=alpha, batch_size=500, seed=0)
    ours_s = time.perf_counter() - start
    _, ours_acc = certified_accuracy_curve(
        radii=ours.radii, predictions=ours.predictions, labels=y, radii_grid=grid
    )

    art = PyTorchRandomizedSmoothing(
        model=base,
        loss=nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=10,
        clip_values=None,
        device_type="cpu",
        sample_size=n,
        scale=sigma,
        alpha=alpha,
    )
    _bound_without_statsmodels(PyTorchRandomizedSmoothing)
    torch.manual_seed(0)
    np.random.seed(0)
    start = time.perf_counter()
    predictions, radii = art.certify(x.numpy(), n=n, batch_size=500)
    art_s = time.perf_counter() - start
    _, art_acc = certified_accuracy_curve(
        radii=np.clip(radii, 0, None),
        predictions=np.asarray(predictions, dtype=np.int64),
        labels=y,
        radii_grid=grid,
    )
    header = " | ".join(f"r={r:g}" for r in grid)
    print(f"\nRandomized smoothing, sigma={sigma}, n0=n={n}, alpha={alpha}, {n_inputs} digits")
    print(f"| library | {header} | seconds |")
    print("|---|" + "---|" * (len(grid) + 1))
    for name, acc, seconds in (("trustlab", ours_acc, ours_s), ("ART", art_acc, art_s)):
        cells = " | ".join(f"{a:.3f}" for a in acc)
        print(f"| {name} | {cells} | {seconds:.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer epochs and samples")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    epochs = 3 if args.quick else 10
    steps = 5 if args.quick else 10
    n_eval = 200 if args.quick else 447
    data = digits()
    print(f"Adversarial training, eps={EPS} (Linf), {epochs} epochs, {steps} inner steps")
    rows = adversarial_training_rows(epochs=epochs, steps=steps, data=data, n_eval=n_eval)
    print("\n| method | library | clean accuracy | PGD-20 robust accuracy | train seconds |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row.method} | {row.library} | {row.clean:.3f} | {row.robust:.3f} | "
            f"{row.seconds:.1f} |"
        )
    smoothing_rows(
        sigma=0.5,
        n=500 if args.quick else 2000,
        n_inputs=50 if args.quick else 200,
        epochs=5 if args.quick else 15,
        data=data,
    )


if __name__ == "__main__":
    main()

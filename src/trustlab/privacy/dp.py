"""Differentially private training (DP-SGD) of any registered architecture, through Opacus.

DP-SGD (Abadi et al., 2016) clips each example's gradient to an L2 norm of at most
``max_grad_norm``, adds Gaussian noise to the sum of the clipped gradients, and samples every
batch by Poisson sampling (each example joins each batch independently with probability
``batch_size / n``). A privacy accountant turns the noise, the sampling rate and the number of
steps into the spent (epsilon, delta). trustlab does none of this itself: per-example gradients,
clipping, noise, Poisson sampling and accounting are Opacus's (the optional ``dp`` extra,
``pip install 'trustlab[dp]'``); :class:`DPSGD` builds the model, checks its layers, asks Opacus
for the noise that meets the target epsilon (``make_private_with_epsilon``), runs the epochs and
reports the epsilon the accountant says was spent.

Batch normalisation mixes the examples of a batch, so it has no per-example gradient and
breaks the guarantee: an architecture with BatchNorm (``resnet18``) is **refused**, not
rewritten, because the rewritten model (GroupNorm in place of BatchNorm, as Opacus's
``ModuleValidator.fix`` does) would no longer load as the registered architecture.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(256, 4)).astype(np.float32)
>>> y = (x[:, 0] > 0).astype(np.int64)
>>> trainer = DPSGD(architecture="mlp", arguments={"in_features": 4}, epsilon=2.0, epochs=2)
>>> report = trainer.fit(x=x, y=y).report_  # doctest: +SKIP
>>> report.epsilon <= 2.0  # doctest: +SKIP
True
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any, ClassVar

import torch
from torch import nn

from trustlab.core.checks import (
    as_input_tensor,
    as_label_tensor,
    check_labels_in_range,
    check_same_length,
    compute_logits,
)
from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.models import build_model
from trustlab.core.optim import make_optimizer, optimizer_constraint
from trustlab.core.params import (
    Constraint,
    InstanceOf,
    Integer,
    NonEmptyStr,
    Optional,
    Options,
    Real,
    Seed,
    store_params,
    validate_params,
)
from trustlab.core.seeding import seeded
from trustlab.core.training import train
from trustlab.core.typing import ArrayLike

__all__ = [
    "ACCOUNTANTS",
    "DPSGD",
    "MSG_BATCH_NORM",
    "MSG_DELTA_TOO_LARGE",
    "MSG_NO_OPACUS",
    "DPReport",
    "require_opacus",
]

#: The privacy accountants of Opacus that :class:`DPSGD` accepts.
ACCOUNTANTS = ("rdp", "prv")

MSG_NO_OPACUS = (
    "DP-SGD training needs Opacus, which is not installed. Install trustlab's 'dp' extra: "
    "pip install 'trustlab[dp]' (or pip install 'opacus>=1.5')."
)
MSG_BATCH_NORM = (
    "Architecture {name!r} cannot be trained with DP-SGD: {problems}. Batch normalisation "
    "mixes the examples of a batch, so per-example gradients and the privacy guarantee do not "
    "exist for it; choose an architecture without BatchNorm (e.g. 'digits-cnn' or 'mlp')."
)
MSG_DELTA_TOO_LARGE = (
    "The 'delta' parameter of DPSGD is {delta:g} but the training set has {n} examples: delta "
    "must be below 1/n = {bound:g} (a delta of 1/n allows leaking one whole example)."
)
MSG_TOO_FEW_ROWS = "DPSGD needs at least 2 training examples; got {n}."


def require_opacus() -> ModuleType:
    """Import Opacus, or raise :class:`ImportError` naming trustlab's ``dp`` extra."""
    try:
        import opacus
    except ImportError as err:
        raise ImportError(MSG_NO_OPACUS) from err
    return opacus


@dataclass
class DPReport:
    """What a DP-SGD run spent and did.

    Attributes
    ----------
    epsilon : float
        The epsilon the accountant reports as spent at ``delta`` after the steps taken (at most
        ``target_epsilon`` up to the accountant's numerical tolerance).
    delta : float
        The delta of the guarantee.
    target_epsilon : float
        The epsilon the noise was calibrated for.
    accountant : {"rdp", "prv"}
        Opacus's accountant: Rényi DP (Mironov, 2017) or the numerical composition of privacy
        loss random variables (Gopi et al., 2021).
    noise_multiplier : float
        The standard deviation of the added noise over ``max_grad_norm``, found by Opacus.
    max_grad_norm : float
        The per-example clipping norm.
    sample_rate : float
        The Poisson sampling rate ``batch_size / n``.
    steps : int
        Noisy optimiser steps taken.
    epochs : int
        Passes over the data (in expectation, with Poisson sampling).
    losses : list of float
        The mean training loss of each epoch.
    """

    epsilon: float
    delta: float
    target_epsilon: float
    accountant: str
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int
    epochs: int
    losses: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The report as JSON-ready values."""
        return asdict(self)


class DPSGD:
    """Train a registered architecture with DP-SGD to a target (epsilon, delta), via Opacus.

    Opacus's ``PrivacyEngine.make_private_with_epsilon`` finds the noise multiplier that spends
    exactly ``epsilon`` at ``delta`` after ``epochs`` passes with Poisson sampling at rate
    ``1 / ceil(n / batch_size)`` (Opacus's rate for that many batches; the batches are drawn by
    :func:`trustlab.core.training.train` with ``sampling="poisson"``), wraps the model for
    per-example gradients and the optimiser for clipping and noise; :meth:`fit` then runs the
    epochs and asks the accountant for the epsilon spent. The guarantee holds at the level of
    one example (add/remove adjacency) of the training set ``(x, y)``.

    Every random draw is seeded from ``seed``: the initial weights, the Poisson batches (a local
    generator) and the noise (torch's global generator, forked and restored). Runs are thus
    reproducible, which also means the noise is not drawn from a cryptographically secure
    generator; use Opacus directly with ``secure_mode=True`` for a deployment.

    Parameters
    ----------
    architecture : str
        A registered architecture (``trustlab.core.models.list_architectures()``) without
        BatchNorm.
    arguments : Mapping[str, object], optional
        Its constructor arguments.
    epsilon : float, default=8.0
        Target epsilon, > 0.
    delta : float, default=1e-5
        Target delta, in (0, 1) and below ``1 / n`` (checked at :meth:`fit`).
    max_grad_norm : float, default=1.0
        Per-example gradient clipping norm, > 0.
    epochs : int, default=10
        Passes over the data, >= 1.
    lr : float, default=0.5
        Learning rate, > 0.
    batch_size : int, default=64
        Expected batch size; the sampling rate is ``batch_size / n``.
    optimizer : {"adam", "adamw", "sgd"}, default="sgd"
        The optimiser Opacus wraps (``"sgd"`` with momentum 0.9).
    weight_decay : float, default=0.0
        L2 penalty, >= 0.
    accountant : {"rdp", "prv"}, default="rdp"
        Opacus's accountant used both to calibrate the noise and to report the spent epsilon.
    seed : int, default=0
        Seed of the initial weights, the batches and the noise.

    Attributes
    ----------
    model_ : torch.nn.Module
        The trained model (a plain module of the architecture, in eval mode, on the CPU).
    report_ : DPReport
        The privacy spent and the training losses.

    References
    ----------
    .. [1] M. Abadi et al., "Deep Learning with Differential Privacy", ACM CCS 2016.
    .. [2] A. Yousefpour et al., "Opacus: User-Friendly Differential Privacy Library in
       PyTorch", arXiv:2109.12298, 2021.

    Examples
    --------
    >>> trainer = DPSGD(architecture="digits-cnn", epsilon=4.0, epochs=5)
    >>> trainer.fit(x=x, y=y).report_.epsilon  # doctest: +SKIP
    3.99...
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "architecture": NonEmptyStr(),
        "arguments": Optional(InstanceOf(Mapping, "a mapping of argument names to values")),
        "epsilon": Real(low=0, closed="neither"),
        "delta": Real(low=0, high=1, closed="neither"),
        "max_grad_norm": Real(low=0, closed="neither"),
        "epochs": Integer(low=1),
        "lr": Real(low=0, closed="neither"),
        "batch_size": Integer(low=1),
        "optimizer": optimizer_constraint,
        "weight_decay": Real(low=0),
        "accountant": Options(*ACCOUNTANTS),
        "seed": Seed,
    }

    architecture: str
    arguments: Mapping[str, object] | None
    epsilon: float
    delta: float
    max_grad_norm: float
    epochs: int
    lr: float
    batch_size: int
    optimizer: str
    weight_decay: float
    accountant: str
    seed: int
    model_: nn.Module
    report_: DPReport

    def __init__(
        self,
        *,
        architecture: str,
        arguments: Mapping[str, object] | None = None,
        epsilon: float = 8.0,
        delta: float = 1e-5,
        max_grad_norm: float = 1.0,
        epochs: int = 10,
        lr: float = 0.5,
        batch_size: int = 64,
        optimizer: str = "sgd",
        weight_decay: float = 0.0,
        accountant: str = "rdp",
        seed: int = 0,
    ) -> None:
        store_params(
            self,
            architecture=architecture,
            arguments=arguments,
            epsilon=epsilon,
            delta=delta,
            max_grad_norm=max_grad_norm,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            optimizer=optimizer,
            weight_decay=weight_decay,
            accountant=accountant,
            seed=seed,
        )
        validate_params(self)

    def fit(self, *, x: ArrayLike, y: ArrayLike) -> DPSGD:
        """Train a fresh model on ``(x, y)`` with DP-SGD; sets ``model_`` and ``report_``.

        Parameters
        ----------
        x : torch.Tensor or ndarray, shape (n, ...)
            Training inputs as the architecture expects them; finite.
        y : torch.Tensor or ndarray of int, shape (n,)
            Class labels in ``[0, n_classes)``.

        Returns
        -------
        DPSGD
            ``self``.

        Raises
        ------
        ImportError
            If Opacus is not installed (the message names the ``dp`` extra).
        ConfigurationError
            If the architecture has BatchNorm (or another layer Opacus cannot privatise), or
            ``delta >= 1 / n``.
        DataError
            If ``x`` or ``y`` have the wrong shape or type, differ in length, or a label has no
            logit.
        """
        opacus = require_opacus()
        from opacus.validators import ModuleValidator

        inputs = as_input_tensor(x).to(torch.float32)
        labels = as_label_tensor(y)
        check_same_length(first="x", n_first=inputs.shape[0], second="y", n_second=len(labels))
        n = int(inputs.shape[0])
        if n < 2:
            raise DataError(MSG_TOO_FEW_ROWS.format(n=n))
        if self.delta >= 1.0 / n:
            raise ConfigurationError(
                MSG_DELTA_TOO_LARGE.format(delta=self.delta, n=n, bound=1.0 / n)
            )
        with seeded(self.seed):
            model = build_model(self.architecture, arguments=self.arguments)
        problems = ModuleValidator.validate(model, strict=False)
        if problems:
            described = "; ".join(sorted({str(problem) for problem in problems}))
            raise ConfigurationError(
                MSG_BATCH_NORM.format(name=self.architecture, problems=described)
            )
        n_classes = int(compute_logits(model=model, x=inputs[:1], batch_size=1).shape[1])
        check_labels_in_range(labels, n_classes=n_classes)
        self.model_, self.report_ = self._train(opacus, model, inputs, labels)
        return self

    def _train(
        self, opacus: ModuleType, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor
    ) -> tuple[nn.Module, DPReport]:
        # Opacus derives the sample rate (1 / number of batches) and the expected batch size
        # from a loader; the batches themselves are drawn by the core loop's Poisson sampling,
        # at that same rate.
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(inputs, labels), batch_size=self.batch_size
        )
        optimizer = make_optimizer(
            self.optimizer,
            model,
            lr=self.lr,
            weight_decay=self.weight_decay,
            owner=type(self).__name__,
        )
        with warnings.catch_warnings():
            # Known, harmless warnings of Opacus's machinery: its noise is not drawn from a
            # secure generator (the docstring says so), its backward hooks fire on inputs that
            # need no gradient, and the RDP accountant's order grid reaches its edge.
            for message in (
                "Secure RNG turned off",
                "Full backward hook is firing",
                "Optimal order",
            ):
                warnings.filterwarnings("ignore", message=f".*{message}")
            engine = opacus.PrivacyEngine(accountant=self.accountant)
            private, dp_optimizer, dp_loader = engine.make_private_with_epsilon(
                module=model,
                optimizer=optimizer,
                data_loader=loader,
                target_epsilon=self.epsilon,
                target_delta=self.delta,
                epochs=self.epochs,
                max_grad_norm=self.max_grad_norm,
                poisson_sampling=True,
            )
            history = train(
                private,
                data={"x": inputs, "y": labels},
                epochs=self.epochs,
                batch_size=self.batch_size,
                seed=self.seed,
                optimizer=dp_optimizer,
                sampling="poisson",
                owner=type(self).__name__,
            )
            spent = float(engine.get_epsilon(self.delta))
        trained = private.to_standard_module()
        trained.eval()
        report = DPReport(
            epsilon=spent,
            delta=self.delta,
            target_epsilon=self.epsilon,
            accountant=self.accountant,
            noise_multiplier=float(dp_optimizer.noise_multiplier),
            max_grad_norm=self.max_grad_norm,
            sample_rate=float(dp_loader.sample_rate),
            steps=history.steps,
            epochs=self.epochs,
            losses=history.losses,
        )
        return trained, report

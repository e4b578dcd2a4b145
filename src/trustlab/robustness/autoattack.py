"""AutoAttack (Croce & Hein, 2020): a cascade of diverse attacks for reliable robust accuracy.

The ``standard`` version runs APGD-CE, APGD-T, FAB-T and Square, each on the examples every
earlier attack failed on; an example counts as robust only if every attack failed. The run
can write its state to a file after every batch and resume from it.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from trustlab.core.checks import (
    check_batch_size,
    check_labels_in_range,
    compute_logits,
    model_device_and_dtype,
)
from trustlab.core.errors import ConfigurationError
from trustlab.core.params import Constraint, Optional, Options, Satisfies, validate_params
from trustlab.core.progress import ProgressCallback, ProgressEvent, report, resolve_progress
from trustlab.core.training import model_mode
from trustlab.core.typing import ArrayLike, PathLike
from trustlab.robustness._cascade_state import NOT_BROKEN, CascadeState
from trustlab.robustness._inputs import check_in_bounds, inputs_and_labels
from trustlab.robustness._params import ThreatModelParams, store_params
from trustlab.robustness.base import BALL_TOLERANCE, Attack, AttackContractError
from trustlab.robustness.norms import Norm, per_example_norm
from trustlab.robustness.registry import make_attack
from trustlab.robustness.sanity import run_sanity_checks

# The modules of the standard version's attacks, imported so that they are registered.
from trustlab.robustness import apgd as _apgd  # noqa: F401  isort: skip
from trustlab.robustness import fab as _fab  # noqa: F401  isort: skip
from trustlab.robustness import square as _square  # noqa: F401  isort: skip

__all__ = [
    "RAND_ATTACKS",
    "STANDARD_ATTACKS",
    "AutoAttack",
    "AutoAttackResult",
    "SanityHook",
    "StageReport",
]

#: The attacks of each version, in cascade order, with the options of the reference's
#: configuration (``fra31/auto-attack``, ``AutoAttack.set_version``).
STANDARD_ATTACKS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("apgd-ce", {"steps": 100, "restarts": 1}),
    ("apgd-t", {"steps": 100, "n_targets": 9, "restarts": 1}),
    # FAB-T's and Square's defaults are the reference's standard settings: 9 target classes
    # and 100 iterations; 5,000 queries with p_init=0.8.
    ("fab-t", {}),
    ("square", {}),
)
RAND_ATTACKS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("apgd-ce", {"steps": 100, "restarts": 1, "eot_iter": 20}),
    ("apgd-dlr", {"steps": 100, "restarts": 1, "eot_iter": 20}),
)
VERSIONS = ("standard", "rand", "custom")
NORMS = (Norm.LINF, Norm.L2)

#: Called as ``sanity(model=..., x=..., y=..., norm=..., eps=..., bounds=..., seed=...,
#: batch_size=...)`` before the cascade; what it returns is reported in
#: :attr:`AutoAttackResult.sanity`. The default is
#: :func:`~trustlab.robustness.sanity.run_sanity_checks`.
SanityHook = Callable[..., Any]
#: Receives a :class:`~trustlab.core.progress.ProgressEvent` after each batch of a stage; its
#: ``stage`` is the attack's name.
StageProgress = ProgressCallback

MSG_CUSTOM_NEEDS_ATTACKS = (
    "AutoAttack(version='custom') needs 'attacks': a list of attack names or Attack objects."
)
MSG_ATTACKS_NEED_CUSTOM = (
    "AutoAttack(version={version!r}) runs its own attacks; pass version='custom' to run the "
    "list given in 'attacks'."
)
MSG_ATTACK_TYPE = (
    "Every entry of AutoAttack's 'attacks' must be an attack name or an Attack object. "
    "Entry {index} is {value!r}."
)
MSG_ATTACK_TARGETED = (
    "AutoAttack's attack {name!r} needs target classes; use an untargeted attack (APGD-T and "
    "FAB-T choose their own targets)."
)
MSG_ATTACK_THREAT = (
    "AutoAttack's attack {name!r} uses the threat model {got}; it must match AutoAttack's "
    "{want}. Build it with the same norm, eps and bounds."
)
MSG_DUPLICATE = "AutoAttack's 'attacks' name {name!r} twice; each attack runs once."
MSG_RUN_DEPRECATED = (
    "AutoAttack.run is deprecated in 0.2 and will be removed in 0.4; use AutoAttack.generate, "
    "which takes the same arguments."
)
MSG_CASCADE_DEPRECATED = (
    "AutoAttack.cascade_ is deprecated in 0.2 and will be removed in 0.4; use AutoAttack.cascade."
)


@dataclass(frozen=True)
class StageReport:
    """What one attack of the cascade did.

    Attributes
    ----------
    name : str
        The attack's registry name.
    attacked : int
        Examples it ran on (those still robust when it started).
    broken : int
        Examples it broke.
    robust_accuracy : float
        Robust accuracy after this stage.
    forwards, backwards : int
        Passes it spent, counted per example.
    seconds : float
        Wall-clock time it took (summed over resumed runs).
    """

    name: str
    attacked: int
    broken: int
    robust_accuracy: float
    forwards: int
    backwards: int
    seconds: float


@dataclass(frozen=True)
class AutoAttackResult:
    """The outcome of an AutoAttack evaluation; tensors are on the device of the inputs ``x``.

    Attributes
    ----------
    x_adv : torch.Tensor, shape (n, ...)
        Per example, the adversarial example of the attack that broke it, else the clean input.
    y : torch.Tensor of int64, shape (n,)
    clean_correct : torch.Tensor of bool, shape (n,)
    adv_correct : torch.Tensor of bool, shape (n,)
        Recomputed from ``x_adv`` with one more forward pass.
    broken_by : torch.Tensor of int64, shape (n,)
        Index into ``attacks`` of the attack that broke the example; ``-1`` where none did
        (robust examples, and examples misclassified when clean).
    perturbation : torch.Tensor, shape (n,)
        The size of ``x_adv - x`` in the threat model's norm.
    attacks : tuple of str
        The cascade's attacks, in order.
    stages : tuple of StageReport
    norm : Norm
    eps : float
    seed : int
    sanity : object or None
        The report of the sanity checks run before the cascade, if any.
    """

    x_adv: torch.Tensor
    y: torch.Tensor
    clean_correct: torch.Tensor
    adv_correct: torch.Tensor
    broken_by: torch.Tensor
    perturbation: torch.Tensor
    attacks: tuple[str, ...]
    stages: tuple[StageReport, ...]
    norm: Norm
    eps: float
    seed: int
    sanity: Any = field(default=None)

    @property
    def n_examples(self) -> int:
        return int(self.y.shape[0])

    @property
    def robust(self) -> torch.Tensor:
        """Per example: classified correctly when clean and after every attack."""
        return self.clean_correct & self.adv_correct

    @property
    def clean_accuracy(self) -> float:
        return float(self.clean_correct.float().mean())

    @property
    def robust_accuracy(self) -> float:
        return float(self.robust.float().mean())

    @property
    def forwards(self) -> int:
        return sum(stage.forwards for stage in self.stages)

    @property
    def backwards(self) -> int:
        return sum(stage.backwards for stage in self.stages)

    @property
    def seconds(self) -> float:
        return sum(stage.seconds for stage in self.stages)

    def broken_by_name(self, index: int) -> str | None:
        """The name of the attack that broke example ``index``, or ``None``."""
        code = int(self.broken_by[index])
        return None if code == NOT_BROKEN else self.attacks[code]

    def summary(self) -> dict[str, Any]:
        """The headline numbers as JSON-ready values."""
        sanity = self.sanity
        if sanity is not None and hasattr(sanity, "summary"):
            sanity = sanity.summary()
        return {
            "n_examples": self.n_examples,
            "norm": self.norm.value,
            "eps": self.eps,
            "seed": self.seed,
            "clean_accuracy": self.clean_accuracy,
            "robust_accuracy": self.robust_accuracy,
            "forwards": self.forwards,
            "backwards": self.backwards,
            "seconds": self.seconds,
            "stages": [vars(stage).copy() for stage in self.stages],
            "sanity": sanity,
        }


def _attack_list(value: object) -> list[Any]:
    """A sequence (not a string) as a list; its entries are checked when the cascade is built."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(value)
    return list(value)


def _callable(value: object) -> object:
    if not callable(value):
        raise TypeError(value)
    return value


class AutoAttack(ThreatModelParams):
    """AutoAttack: APGD-CE, APGD-T, FAB-T and Square run as a per-example cascade.

    Croce and Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", ICML 2020 (the evaluation of RobustBench). Each attack runs only
    on the examples that are classified correctly and that every earlier attack failed on; an
    example counts as robust only if every attack failed. Versions:

    - ``"standard"`` (the reference's default): APGD-CE (100 iterations, 1 restart), APGD-T
      (9 target classes, 100 iterations each), FAB-T (9 target classes, 100 iterations) and
      Square (5,000 queries, ``p_init=0.8``);
    - ``"rand"``, for randomised defences: APGD-CE and APGD-DLR with Expectation over
      Transformation over 20 draws;
    - ``"custom"``: the attacks given in ``attacks``, in that order.

    Threat model: white box (and score-based black box for Square), untargeted, Linf or L2 of
    radius ``eps``, inputs in ``bounds``.

    Results do not depend on the batch size or on resuming: every attack keys its random
    draws by the example's position in ``x`` and the ``seed``, so an example meets the same
    attack whatever else shares its batch. Every example returned is re-checked (finite, in
    ``bounds``, in the ball) and the robust accuracy is recomputed from ``x_adv``.

    Parameters
    ----------
    norm : {"Linf", "L2"}, default="Linf"
    eps : float
        The radius of the threat model, > 0.
    version : {"standard", "rand", "custom"}, default="standard"
    attacks : sequence of str or Attack, optional
        With ``version="custom"``: registry names (built with this ``norm``, ``eps``,
        ``bounds`` and ``seed``) or Attack objects of the same threat model.
    bounds : (float, float), default=(0.0, 1.0)
    seed : int, default=0
        The seed every attack of a named version gets.
    sanity : callable or None, default=run_sanity_checks
        Sanity checks run before the cascade, called as ``sanity(model=..., x=..., y=...,
        norm=..., eps=..., bounds=..., seed=..., batch_size=...)``; their report (by default a
        :class:`~trustlab.robustness.sanity.SanityReport` whose flags say what a failed check
        suggests: gradient masking, a randomised model that needs EOT, ...) is returned in
        :attr:`AutoAttackResult.sanity`. ``None`` skips them.

    Notes
    -----
    The attacks break examples as the reference does but return the first adversarial iterate
    they find rather than the last, and stop attacking an example once it is broken; this
    changes no example's verdict (see :class:`~trustlab.robustness.apgd.APGDCE`). The reference
    runs the sanity checks on the first batch only.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from trustlab.robustness.apgd import APGDCE
    >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    >>> x, y = torch.rand(8, 4), torch.randint(0, 3, (8,))
    >>> evaluation = AutoAttack(
    ...     eps=0.05, version="custom", attacks=[APGDCE(eps=0.05, steps=5)], sanity=None
    ... )
    >>> result = evaluation.generate(model=model, x=x, y=y)
    >>> result.robust_accuracy <= result.clean_accuracy
    True
    """

    norms: ClassVar[tuple[Norm, ...]] = NORMS
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "version": Options(*VERSIONS),
        "attacks": Optional(Satisfies(_attack_list, "a list of attack names or Attack objects")),
        "sanity": Optional(Satisfies(_callable, "a callable")),
    }

    norm: Norm
    eps: float
    bounds: tuple[float, float]
    seed: int
    version: str
    attacks: list[str | Attack] | None
    sanity: SanityHook | None

    def __init__(
        self,
        *,
        norm: Norm | str = "Linf",
        eps: float,
        version: str = "standard",
        attacks: Sequence[str | Attack] | None = None,
        bounds: tuple[float, float] = (0.0, 1.0),
        seed: int = 0,
        sanity: SanityHook | None = run_sanity_checks,
    ) -> None:
        store_params(
            self,
            norm=norm,
            eps=eps,
            version=version,
            attacks=attacks,
            bounds=bounds,
            seed=seed,
            sanity=sanity,
        )
        validate_params(self)
        if self.version == "custom" and not self.attacks:
            raise ConfigurationError(MSG_CUSTOM_NEEDS_ATTACKS)
        if self.version != "custom" and self.attacks is not None:
            raise ConfigurationError(MSG_ATTACKS_NEED_CUSTOM.format(version=self.version))
        # Build (and so check) the cascade now; a bad entry raises before any work.
        self._cascade = self._build()

    # -- the cascade -------------------------------------------------------------------------

    def _build(self) -> list[tuple[str, Attack]]:
        if self.version == "custom":
            assert self.attacks is not None
            entries: list[tuple[str, Attack]] = []
            for index, entry in enumerate(self.attacks):
                if isinstance(entry, str):
                    entries.append((entry, self._make(entry, {})))
                elif isinstance(entry, Attack):
                    entries.append((entry.name, entry))
                else:
                    raise ConfigurationError(MSG_ATTACK_TYPE.format(index=index, value=entry))
        else:
            named = STANDARD_ATTACKS if self.version == "standard" else RAND_ATTACKS
            entries = [(name, self._make(name, options)) for name, options in named]
        seen: set[str] = set()
        for name, attack in entries:
            if name in seen:
                raise ConfigurationError(MSG_DUPLICATE.format(name=name))
            seen.add(name)
            self._check_attack(name, attack)
        return entries

    def _make(self, name: str, options: dict[str, Any]) -> Attack:
        common = {"norm": self.norm, "eps": self.eps, "bounds": self.bounds, "seed": self.seed}
        return make_attack(name, options={**common, **options})

    def _check_attack(self, name: str, attack: Attack) -> None:
        if attack.targeted:
            raise ConfigurationError(MSG_ATTACK_TARGETED.format(name=name))
        same_eps = attack.eps is None or math.isclose(attack.eps, self.eps, rel_tol=1e-9)
        if attack.norm is not self.norm or not same_eps or attack.bounds != self.bounds:
            got = f"{attack.norm.value}, eps={attack.eps}, bounds={attack.bounds}"
            want = f"{self.norm.value}, eps={self.eps}, bounds={self.bounds}"
            raise ConfigurationError(MSG_ATTACK_THREAT.format(name=name, got=got, want=want))

    @property
    def cascade(self) -> list[tuple[str, Attack]]:
        """The attacks in the order they run, as ``(name, attack)`` pairs."""
        return list(self._cascade)

    @property
    def cascade_(self) -> list[tuple[str, Attack]]:
        """Deprecated alias of :attr:`cascade`."""
        warnings.warn(MSG_CASCADE_DEPRECATED, FutureWarning, stacklevel=2)
        return self.cascade

    @property
    def attack_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self._cascade)

    # -- running -----------------------------------------------------------------------------

    def run(
        self,
        *,
        model: nn.Module,
        x: ArrayLike,
        y: ArrayLike,
        batch_size: int = 256,
        state_path: PathLike | None = None,
        progress: StageProgress | None = None,
    ) -> AutoAttackResult:
        """Deprecated alias of :meth:`generate`."""
        warnings.warn(MSG_RUN_DEPRECATED, FutureWarning, stacklevel=2)
        return self.generate(
            model=model,
            x=x,
            y=y,
            batch_size=batch_size,
            state_path=state_path,
            progress=progress,
        )

    def generate(
        self,
        *,
        model: nn.Module,
        x: ArrayLike,
        y: ArrayLike,
        batch_size: int = 256,
        state_path: PathLike | None = None,
        progress: StageProgress | None = None,
    ) -> AutoAttackResult:
        """Run the cascade on every example of ``x`` and return the re-checked result.

        Parameters
        ----------
        model : torch.nn.Module
            A classifier mapping (batch, ...) to logits (batch, n_classes), run in eval mode.
        x : torch.Tensor or ndarray, shape (n, ...)
            Clean inputs inside ``bounds``.
        y : torch.Tensor or ndarray of int, shape (n,)
            True labels.
        batch_size : int, default=256
            Examples attacked together; results do not depend on it.
        state_path : path, optional
            A ``.npz`` file to write the evaluation's state to after every batch. If it exists
            and belongs to the same evaluation (same model weights, data, attacks and seed),
            the run resumes from it; a finished state returns its result at once.
        progress : callable, optional
            Receives a :class:`~trustlab.core.progress.ProgressEvent` after each batch of a
            stage: ``stage`` the attack's name, ``done`` and ``total`` the examples it attacked
            and will attack, ``metrics={"robust": n}`` the examples still robust. The old
            ``progress(attack_name, done, total)`` shape still works, with a FutureWarning.

        Returns
        -------
        AutoAttackResult
        """
        batch_size = check_batch_size(batch_size, owner="AutoAttack")
        callback = resolve_progress(
            progress, owner="AutoAttack", legacy=_legacy_stage_progress, arity=3
        )
        x_t, y_t = inputs_and_labels(x, y)
        check_in_bounds(x_t, self.bounds)
        _, dtype = model_device_and_dtype(model)
        x_t = x_t.to(dtype)

        with model_mode(model, training=False):
            clean_logits = compute_logits(model=model, x=x_t, batch_size=batch_size)
        check_labels_in_range(y_t, n_classes=int(clean_logits.shape[1]))
        clean_correct = clean_logits.argmax(dim=1) == y_t
        sanity_report = None
        if self.sanity is not None:
            sanity_report = self.sanity(
                model=model,
                x=x_t,
                y=y_t,
                norm=self.norm,
                eps=self.eps,
                bounds=self.bounds,
                seed=self.seed,
                batch_size=batch_size,
            )

        state = CascadeState.fresh(x=x_t, clean_correct=clean_correct, n_attacks=len(self._cascade))
        path = Path(state_path) if state_path is not None else None
        fingerprint = "" if path is None else self._fingerprint(model, x_t, y_t)
        if path is not None and path.exists():
            state = CascadeState.load(path, fingerprint=fingerprint, like=x_t)

        for stage in range(state.stage, len(self._cascade)):
            name, attack = self._cascade[stage]
            if state.stage != stage or state.rows is None:
                state.stage = stage
                state.rows = torch.nonzero(state.robust).squeeze(1)
                state.done = 0
                state.attacked[stage] = int(state.rows.numel())
            rows_all = state.rows
            total = int(rows_all.numel())
            while state.done < total:
                rows = rows_all[state.done : state.done + batch_size]
                started = time.perf_counter()
                result = attack.generate(
                    model=model, x=x_t[rows], y=y_t[rows], batch_size=batch_size, indices=rows
                )
                # The bookkeeping stays on the CPU; the examples on the input's device.
                broken = ~result.adv_correct.cpu()
                if attack.eps is None:
                    broken &= result.perturbation.cpu() <= self.eps * (1 + BALL_TOLERANCE)
                hit = rows[broken]
                home = state.x_adv.device
                state.x_adv[hit.to(home)] = result.x_adv[broken.to(home)]
                state.robust[hit] = False
                state.broken_by[hit] = stage
                state.forwards[stage] += result.forwards
                state.backwards[stage] += result.backwards
                state.seconds[stage] += time.perf_counter() - started
                state.done += int(rows.numel())
                if path is not None:
                    state.save(path, fingerprint=fingerprint)
                report(
                    callback,
                    stage=name,
                    done=state.done,
                    total=total,
                    metrics={"robust": int(state.robust.sum())},
                )
            state.robust_after[stage] = int(state.robust.sum())
            state.stage, state.rows, state.done = stage + 1, None, 0
            if path is not None:
                state.save(path, fingerprint=fingerprint)
        return self._result(model, x_t, y_t, clean_correct, state, sanity_report, batch_size)

    def _result(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        clean_correct: torch.Tensor,
        state: CascadeState,
        sanity_report: Any,
        batch_size: int,
    ) -> AutoAttackResult:
        x_adv = state.x_adv
        first = self._cascade[0][1]
        # The re-check every attack's result gets, on the cascade's output.
        first._check_contract(x, x_adv)
        perturbation = per_example_norm(x_adv - x, self.norm)
        over = perturbation > self.eps * (1 + BALL_TOLERANCE) + BALL_TOLERANCE
        if bool(over.any()):
            index = int(torch.argmax(over.to(torch.uint8)))
            raise AttackContractError(
                f"AutoAttack returned example {index} outside the eps ball "
                f"({float(perturbation[index]):.6g} > {self.eps:.6g}); this is a bug."
            )
        with model_mode(model, training=False):
            adv_logits = compute_logits(model=model, x=x_adv, batch_size=batch_size)
        adv_correct = adv_logits.argmax(dim=1) == y
        home = x.device
        n = int(y.shape[0])
        stages = tuple(
            StageReport(
                name=name,
                attacked=int(state.attacked[i]),
                broken=int(state.attacked[i] - state.robust_after[i]),
                robust_accuracy=float(state.robust_after[i]) / n,
                forwards=int(state.forwards[i]),
                backwards=int(state.backwards[i]),
                seconds=float(state.seconds[i]),
            )
            for i, (name, _) in enumerate(self._cascade)
        )
        return AutoAttackResult(
            x_adv=x_adv,
            y=y.to(home),
            clean_correct=clean_correct.to(home),
            adv_correct=adv_correct.to(home),
            broken_by=state.broken_by.to(home, copy=True),
            perturbation=perturbation,
            attacks=self.attack_names,
            stages=stages,
            norm=self.norm,
            eps=self.eps,
            seed=self.seed,
            sanity=sanity_report,
        )

    def _fingerprint(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> str:
        """A digest of everything the result depends on: weights, data and configuration."""
        digest = hashlib.sha256()
        config = {
            "norm": self.norm.value,
            "eps": self.eps,
            "bounds": list(self.bounds),
            "seed": self.seed,
            "attacks": [
                [name, type(attack).__name__, _describe(attack)] for name, attack in self._cascade
            ],
        }
        digest.update(json.dumps(config, sort_keys=True, default=str).encode())
        for key, tensor in model.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        digest.update(x.detach().cpu().contiguous().numpy().tobytes())
        digest.update(y.numpy().tobytes())
        return digest.hexdigest()


def _legacy_stage_progress(callback: Callable[..., object], event: ProgressEvent) -> None:
    """Call an old-style ``progress(attack_name, done, total)`` callback."""
    callback(event.stage, event.done, event.total)


def _describe(attack: Attack) -> dict[str, str]:
    """The attack's hyperparameters (its public attributes) as strings."""
    return {
        key: repr(value)
        for key, value in sorted(vars(attack).items())
        if not key.startswith("_") and not key.endswith("_")
    }

"""Reference models: k models of one recipe, each trained on a random half of a population.

The strongest membership-inference attacks (LiRA, RMIA, the calibrated LOSS attack, Shokri's
shadow models) compare the target model with models the attacker trains itself on data from
the same distribution, knowing which example each of them saw. :class:`ReferenceModels` trains
such a set once, records the membership of every example in every model, saves it (one
safetensors file per model and a ``manifest.json``) and reloads it, so one set serves every
attack and every target.

Training is vectorised where the architecture allows it: the k models' parameters are stacked
and one step updates all of them, through batched matrix products for plain MLPs and through
:func:`torch.func.vmap` otherwise (see ``trustlab.privacy._vectorised``). Architectures with
buffers (batch normalisation) are trained one after another with
:func:`trustlab.core.training.train`. Both paths give model ``i`` the same initial weights, the
same rows and the same order of mini-batches, so they train the same models up to
floating-point rounding.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
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
from trustlab.core.models import build_model, resolve_arguments
from trustlab.core.optim import optimizer_constraint
from trustlab.core.params import Boolean, Integer, NonEmptyStr, Optional, Real, Seed, check_param
from trustlab.core.progress import ProgressCallback, ProgressEvent, report, resolve_progress
from trustlab.core.seeding import seeded
from trustlab.core.training import train
from trustlab.core.typing import ArrayLike, PathLike
from trustlab.core.weights import load_model, read_architecture, save_model
from trustlab.privacy._vectorised import train_vectorised

__all__ = ["MANIFEST", "ReferenceModels", "check_population", "population_hash", "split_population"]

#: The name of the manifest file in a saved set.
MANIFEST = "manifest.json"
_FORMAT = 1

MSG_POPULATION_TOO_SMALL = (
    "ReferenceModels.train needs a population of at least 2 examples, so that each reference "
    "model trains on a non-empty half and leaves a non-empty half out; got {n}."
)
MSG_CANNOT_VECTORISE = (
    "Architecture {architecture!r} cannot be trained vectorised: it has buffers ({buffers}), "
    "which vmap cannot update. Pass vectorise=False or None."
)
MSG_EXISTS = (
    "Cannot save reference models to {path}: it exists and is not an empty folder. Choose a "
    "new folder or remove it first."
)
MSG_NO_MANIFEST = "{path} holds no {manifest}; it is not a folder written by ReferenceModels.save."
MSG_BAD_MANIFEST = "The manifest {path} is not valid: {problem}."
MSG_OTHER_ARCHITECTURE = (
    "The reference models in {path} were trained for architecture {found!r} "
    "({found_arguments}), not {expected!r}; train a set for this architecture."
)
MSG_FILE_ARCHITECTURE = (
    "The weights file {file} holds architecture {found!r} with {found_arguments}, but the "
    "manifest says {expected!r} with {expected_arguments}; the folder was altered."
)
MSG_OTHER_POPULATION = (
    "The reference models in {path} were trained on another population ({n_saved} examples, "
    "hash {saved}) than the x and y given ({n_given} examples, hash {given})."
)
MSG_MEMBERSHIP_SHAPE = (
    "membership must be a bool array of shape (n_models, n_population) with one row per model, "
    "and there must be at least one model; got shape {shape} for {n_models} models."
)
MSG_X_AND_Y = "ReferenceModels.load checks a population only from both x and y; got only {given}."
MSG_X_DOES_NOT_FIT = (
    "x of shape {shape} does not fit architecture {architecture!r} with arguments {arguments}: "
    "{error}"
)
MSG_DEVICE = (
    "The 'device' parameter of {owner} must name an available torch device such as 'cpu' or "
    "'cuda'; got {device!r} ({problem})."
)
MSG_SUBSET = (
    "indices must be distinct positions of reference models in [0, {n_models}); got {indices}."
)


def split_population(n_models: int, n_population: int, *, seed: int) -> npt.NDArray[np.bool_]:
    """Draw which examples each reference model trains on.

    Models come in complementary pairs: model ``2j`` trains on a random half of the population
    (``n_population // 2`` examples) and model ``2j + 1`` on the other half, so with an even
    ``n_models`` every example is IN exactly half of the models (the balanced design of
    Carlini et al., 2022) and every model has ``n_population // 2`` or
    ``ceil(n_population / 2)`` examples. With an odd ``n_models`` the last model trains on a
    random half of its own.

    Parameters
    ----------
    n_models : int
        Number of models, >= 1.
    n_population : int
        Number of examples, >= 2.
    seed : int
        Seed of the draw.

    Returns
    -------
    ndarray of bool, shape (n_models, n_population)
        ``membership[i, j]`` is True iff model ``i`` trains on example ``j``.

    Examples
    --------
    >>> membership = split_population(4, 10, seed=0)
    >>> membership.sum(axis=0).tolist() == [2] * 10
    True
    """
    n_models = check_param(n_models, Integer(low=1), name="n_models", owner="split_population")
    n_population = check_param(
        n_population, Integer(low=0), name="n_population", owner="split_population"
    )
    if n_population < 2:
        raise DataError(MSG_POPULATION_TOO_SMALL.format(n=n_population))
    rng = np.random.default_rng(seed)
    membership = np.zeros((n_models, n_population), dtype=bool)
    half = n_population // 2
    for first in range(0, n_models, 2):
        chosen = rng.permutation(n_population)[:half]
        membership[first, chosen] = True
        if first + 1 < n_models:
            membership[first + 1] = ~membership[first]
    return membership


def population_hash(x: torch.Tensor, y: torch.Tensor) -> str:
    """A SHA-256 of the population's values (as float32 inputs and int64 labels) and shapes."""
    digest = hashlib.sha256()
    digest.update(repr(tuple(x.shape)).encode())
    digest.update(np.ascontiguousarray(x.detach().cpu().to(torch.float32).numpy()).tobytes())
    digest.update(np.ascontiguousarray(y.detach().cpu().to(torch.int64).numpy()).tobytes())
    return digest.hexdigest()


def _seeds(seed: int, n_models: int) -> tuple[int, list[int]]:
    state = np.random.SeedSequence(seed).generate_state(n_models + 1)
    return int(state[0]), [int(value) for value in state[1:]]


def check_population(
    x: ArrayLike, y: ArrayLike, *, names: tuple[str, str] = ("x", "y")
) -> tuple[torch.Tensor, torch.Tensor]:
    """Checked inputs (float32 if floating) and int64 labels of a population, named in errors."""
    inputs = as_input_tensor(x)
    labels = as_label_tensor(y)
    check_same_length(
        first=names[0], n_first=inputs.shape[0], second=names[1], n_second=len(labels)
    )
    if inputs.is_floating_point():
        inputs = inputs.to(torch.float32)
    return inputs, labels


class ReferenceModels:
    """A set of reference models, each trained on a random half of a population.

    Build one with :meth:`train` or :meth:`load`; the attacks that need reference models
    (:class:`~trustlab.privacy.LiRA`, :class:`~trustlab.privacy.RMIA`,
    :class:`~trustlab.privacy.CalibratedLossAttack`, :class:`~trustlab.privacy.ShadowModelAttack`)
    take it at construction.

    Attributes
    ----------
    architecture : str
        The registered architecture of every model.
    arguments : dict
        Its constructor arguments, defaults included.
    membership : ndarray of bool, shape (n_models, n_population)
        Row ``i``: the examples model ``i`` trained on.
    models : list of torch.nn.Module
        The models, in eval mode, on the CPU.
    recipe : dict
        How they were trained (epochs, lr, batch size, weight decay, optimiser, seed).
    population : dict
        ``{"n": n_population, "sha256": hash}`` of the population they were trained on.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(40, 3)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> refs = ReferenceModels.train(
    ...     architecture="mlp", arguments={"in_features": 3, "hidden": [8]},
    ...     x=x, y=y, n_models=2, epochs=2)
    >>> refs.membership.shape, refs.logits(x).shape
    ((2, 40), torch.Size([2, 40, 2]))
    """

    def __init__(
        self,
        *,
        architecture: str,
        arguments: Mapping[str, Any],
        membership: npt.NDArray[np.bool_],
        models: list[nn.Module],
        recipe: Mapping[str, Any],
        population: Mapping[str, Any],
    ) -> None:
        membership = np.asarray(membership, dtype=bool)
        if membership.ndim != 2 or membership.shape[0] != len(models) or not models:
            raise DataError(
                MSG_MEMBERSHIP_SHAPE.format(shape=membership.shape, n_models=len(models))
            )
        self.architecture = architecture
        self.arguments = dict(arguments)
        self.membership = membership
        self.models = [model.eval() for model in models]
        self.recipe = dict(recipe)
        self.population = dict(population)

    @property
    def n_models(self) -> int:
        """The number of reference models."""
        return len(self.models)

    @property
    def n_population(self) -> int:
        """The number of examples of the population the models were trained on."""
        return int(self.membership.shape[1])

    @classmethod
    def train(
        cls,
        *,
        architecture: str,
        arguments: Mapping[str, object],
        x: ArrayLike,
        y: ArrayLike,
        n_models: int,
        epochs: int,
        lr: float = 1e-3,
        batch_size: int = 64,
        weight_decay: float = 0.0,
        optimizer: str = "adam",
        seed: int = 0,
        vectorise: bool | None = None,
        progress: ProgressCallback | None = None,
        device: str | None = None,
    ) -> ReferenceModels:
        """Train ``n_models`` models of ``architecture``, each on a random half of ``(x, y)``.

        The halves come from :func:`split_population` (every example IN exactly half of the
        models when ``n_models`` is even). Model ``i`` is initialised and its mini-batches
        ordered from its own seed, derived from ``seed``, so a seed gives the same set.

        Parameters
        ----------
        architecture : str
            A registered architecture (see :func:`trustlab.core.models.list_architectures`).
        arguments : Mapping[str, object]
            Its constructor arguments.
        x : array-like, shape (n_population, ...)
            The population's inputs (finite).
        y : array-like of int, shape (n_population,)
            Their labels, within the architecture's outputs.
        n_models : int
            Number of reference models, >= 1.
        epochs, lr, batch_size, weight_decay, optimizer
            The training recipe, as in :func:`trustlab.core.training.train`.
        seed : int, default 0
            Seed of the split, the initial weights and the batch order.
        vectorise : bool or None, default None
            Train all models at once (True), one after another (False), or vectorised
            whenever the architecture has no buffers (None). Vectorised, a plain MLP runs
            batched matrix products and any other architecture ``vmap``.
        progress : callable, optional
            Receives a :class:`~trustlab.core.progress.ProgressEvent`: stage ``"epoch"`` after
            each epoch when vectorised, stage ``"model"`` after each model otherwise. The old
            ``progress(done, total)`` shape still works, with a FutureWarning.
        device : str, optional
            Train on this torch device (``"cuda"``, ``"cuda:1"``); default the CPU. The
            models come back on the CPU either way.

        Returns
        -------
        ReferenceModels

        Raises
        ------
        ConfigurationError
            If a parameter is out of range (``n_models=0`` included), ``vectorise=True`` for
            an architecture with buffers, or ``device`` is not a usable torch device.
        DataError
            If the population has fewer than 2 examples, bad shapes or labels out of range.
        """
        owner = "ReferenceModels.train"
        callback = resolve_progress(progress, owner=owner, legacy=_legacy_done_total, arity=2)
        architecture = check_param(architecture, NonEmptyStr(), name="architecture", owner=owner)
        n_models = check_param(n_models, Integer(low=1), name="n_models", owner=owner)
        epochs = check_param(epochs, Integer(low=1), name="epochs", owner=owner)
        lr = check_param(lr, Real(low=0, closed="neither"), name="lr", owner=owner)
        batch_size = check_param(batch_size, Integer(low=1), name="batch_size", owner=owner)
        weight_decay = check_param(weight_decay, Real(low=0), name="weight_decay", owner=owner)
        optimizer = check_param(optimizer, optimizer_constraint, name="optimizer", owner=owner)
        seed = check_param(seed, Seed, name="seed", owner=owner)
        vectorise = check_param(vectorise, Optional(Boolean()), name="vectorise", owner=owner)
        resolved = resolve_arguments(architecture, arguments)
        target_device = _training_device(device, owner=owner)
        inputs, labels = check_population(x, y)
        split_seed, model_seeds = _seeds(seed, n_models)
        membership = split_population(n_models, inputs.shape[0], seed=split_seed)
        models = []
        for model_seed in model_seeds:
            with seeded(model_seed):
                models.append(build_model(architecture, arguments=resolved))
        try:
            n_classes = int(compute_logits(model=models[0], x=inputs[:1], batch_size=1).shape[1])
        except DataError as err:  # the model cannot run on x, e.g. a wrong feature count
            raise DataError(
                MSG_X_DOES_NOT_FIT.format(
                    shape=tuple(inputs.shape),
                    architecture=architecture,
                    arguments=resolved,
                    error=str(err).splitlines()[0],
                )
            ) from None
        check_labels_in_range(labels, n_classes=n_classes)
        buffers = [name for name, _ in models[0].named_buffers()]
        if vectorise and buffers:
            raise ConfigurationError(
                MSG_CANNOT_VECTORISE.format(architecture=architecture, buffers=", ".join(buffers))
            )
        vectorised = not buffers if vectorise is None else vectorise
        rows = [torch.from_numpy(np.flatnonzero(member)) for member in membership]
        models = [model.to(target_device) for model in models]
        if vectorised:
            train_vectorised(
                models,
                x=inputs,
                y=labels,
                rows=rows,
                seeds=model_seeds,
                epochs=epochs,
                batch_size=batch_size,
                lr=lr,
                weight_decay=weight_decay,
                optimizer=optimizer,
                progress=lambda done, total: report(
                    callback, stage="epoch", done=done, total=total
                ),
            )
        else:
            for i, (model, model_rows, model_seed) in enumerate(
                zip(models, rows, model_seeds, strict=True)
            ):
                train(
                    model,
                    data={"x": inputs, "y": labels},
                    rows=model_rows,
                    epochs=epochs,
                    batch_size=batch_size,
                    seed=model_seed,
                    lr=lr,
                    weight_decay=weight_decay,
                    optimizer=optimizer,
                    owner=owner,
                )
                report(callback, stage="model", done=i + 1, total=n_models)
        models = [model.cpu() for model in models]
        recipe = {
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "weight_decay": weight_decay,
            "optimizer": optimizer,
            "seed": seed,
            "vectorised": vectorised,
        }
        return cls(
            architecture=architecture,
            arguments=resolved,
            membership=membership,
            models=models,
            recipe=recipe,
            population={"n": int(inputs.shape[0]), "sha256": population_hash(inputs, labels)},
        )

    def subset(self, indices: Sequence[int]) -> ReferenceModels:
        """The set of the models at ``indices`` (their membership rows), sharing the models.

        Examples
        --------
        >>> refs = ReferenceModels(architecture="mlp", arguments={}, recipe={}, population={},
        ...                        membership=np.eye(4, dtype=bool), models=[nn.Identity()] * 4)
        >>> refs.subset([0, 1]).membership.shape
        (2, 4)
        """
        chosen = [int(i) for i in indices]
        if (
            not chosen
            or len(set(chosen)) != len(chosen)
            or not all(0 <= i < self.n_models for i in chosen)
        ):
            raise ConfigurationError(MSG_SUBSET.format(n_models=self.n_models, indices=indices))
        return ReferenceModels(
            architecture=self.architecture,
            arguments=self.arguments,
            membership=self.membership[chosen],
            models=[self.models[i] for i in chosen],
            recipe=self.recipe,
            population=self.population,
        )

    def logits(self, x: ArrayLike, *, batch_size: int = 1024) -> torch.Tensor:
        """Every model's logits on ``x``, in eval mode, without gradients.

        Parameters
        ----------
        x : array-like, shape (n_examples, ...)
            Inputs (finite).
        batch_size : int, default 1024
            Rows per forward pass.

        Returns
        -------
        torch.Tensor, shape (n_models, n_examples, n_classes)
            On the CPU.
        """
        batch_size = check_param(
            batch_size, Integer(low=1), name="batch_size", owner="ReferenceModels.logits"
        )
        inputs = as_input_tensor(x)
        if inputs.is_floating_point():
            inputs = inputs.to(torch.float32)
        return torch.stack(
            [compute_logits(model=model, x=inputs, batch_size=batch_size) for model in self.models]
        )

    def save(self, directory: PathLike) -> None:
        """Write the models (safetensors, one file each) and ``manifest.json`` to ``directory``.

        Everything is written to a temporary folder beside ``directory`` and renamed at the
        end, so a reader never sees half a set.

        Raises
        ------
        ConfigurationError
            If ``directory`` exists and is not an empty folder.
        """
        target = Path(directory)
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise ConfigurationError(MSG_EXISTS.format(path=target))
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            files = []
            for i, model in enumerate(self.models):
                name = f"model-{i:04d}.safetensors"
                save_model(model, staging / name, architecture=self.architecture,
                           arguments=self.arguments)  # fmt: skip
                files.append(name)
            manifest = {
                "format": _FORMAT,
                "architecture": self.architecture,
                "arguments": self.arguments,
                "files": files,
                "membership": ["".join("1" if m else "0" for m in row) for row in self.membership],
                "recipe": self.recipe,
                "population": self.population,
            }
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
            if target.exists():
                target.rmdir()
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @classmethod
    def load(
        cls,
        directory: PathLike,
        *,
        x: ArrayLike | None = None,
        y: ArrayLike | None = None,
        architecture: str | None = None,
    ) -> ReferenceModels:
        """Load a set written by :meth:`save`.

        Parameters
        ----------
        directory : str or os.PathLike
            The folder :meth:`save` wrote.
        x, y : array-like, optional
            The population the caller means; refused unless it is the one the models were
            trained on (same values, same order).
        architecture : str, optional
            The architecture the caller expects; refused unless the set has it.

        Raises
        ------
        ConfigurationError
            If the folder holds no valid manifest, the set is of another architecture, or
            ``x``, ``y`` are another population.
        WeightsError
            If a weights file is missing or corrupt.
        """
        folder = Path(directory)
        path = folder / MANIFEST
        if not path.is_file():
            raise ConfigurationError(MSG_NO_MANIFEST.format(path=folder, manifest=MANIFEST))
        try:
            manifest = json.loads(path.read_text())
            found = str(manifest["architecture"])
            arguments = dict(manifest["arguments"])
            files = [str(name) for name in manifest["files"]]
            membership = np.array(
                [[c == "1" for c in row] for row in manifest["membership"]], dtype=bool
            )
            recipe, population = dict(manifest["recipe"]), dict(manifest["population"])
        except (ValueError, KeyError, TypeError) as err:
            raise ConfigurationError(MSG_BAD_MANIFEST.format(path=path, problem=err)) from None
        if architecture is not None and architecture != found:
            raise ConfigurationError(
                MSG_OTHER_ARCHITECTURE.format(
                    path=folder, found=found, found_arguments=arguments, expected=architecture
                )
            )
        if x is not None or y is not None:
            if x is None or y is None:
                raise ConfigurationError(MSG_X_AND_Y.format(given="x" if y is None else "y"))
            inputs, labels = check_population(x, y)
            given = population_hash(inputs, labels)
            if given != population.get("sha256"):
                raise ConfigurationError(
                    MSG_OTHER_POPULATION.format(
                        path=folder,
                        n_saved=population.get("n"),
                        saved=str(population.get("sha256"))[:12],
                        n_given=int(inputs.shape[0]),
                        given=given[:12],
                    )
                )
        models = []
        for name in files:
            file_architecture, file_arguments = read_architecture(folder / name)
            if (file_architecture, file_arguments) != (found, arguments):
                raise ConfigurationError(
                    MSG_FILE_ARCHITECTURE.format(
                        file=folder / name,
                        found=file_architecture,
                        found_arguments=file_arguments,
                        expected=found,
                        expected_arguments=arguments,
                    )
                )
            models.append(load_model(folder / name))
        return cls(
            architecture=found,
            arguments=arguments,
            membership=membership,
            models=models,
            recipe=recipe,
            population=population,
        )


def _training_device(device: str | None, *, owner: str) -> torch.device:
    """The checked torch device to train on (the CPU by default)."""
    if device is None:
        return torch.device("cpu")
    try:
        target = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ConfigurationError(
            MSG_DEVICE.format(owner=owner, device=device, problem=err)
        ) from None
    if target.type == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError(
            MSG_DEVICE.format(owner=owner, device=device, problem="CUDA is not available")
        )
    return target


def _legacy_done_total(callback: Callable[..., object], event: ProgressEvent) -> None:
    """Call an old-style ``progress(done, total)`` callback."""
    callback(event.done, event.total)

"""What the audit reads: the model and the data, checked before any work or any file is written.

A model is an ``nn.Module``, a trustlab safetensors file (its architecture is in the file's
metadata, see :mod:`trustlab.core.weights`), an ONNX file, or ``module:function`` (or
``path/to/file.py:function``) naming a function that returns an ``nn.Module``.

Data are an :class:`AuditData`, an ``.npz`` file or a registered data set name (``digits``,
``adult``, ``adult:train``, ...). An ``.npz`` holds ``x`` and ``y`` and optionally:

* ``member``: one flag per example, 1 if the model trained on it (enables the membership
  attacks of the privacy section);
* ``groups``: the sensitive attribute of each example (1-D), or several as columns (2-D) named
  by a ``group_names`` array; and/or arrays ``sensitive_<name>``, one attribute each.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trustlab.audit._onnx import OnnxClassifier
from trustlab.core.data import TabularDataset, list_datasets, load_dataset
from trustlab.core.errors import ConfigurationError, DataError, TrustlabError
from trustlab.core.typing import PathLike
from trustlab.core.weights import load_model

__all__ = [
    "AuditData",
    "AuditModel",
    "check_model_fits_data",
    "load_audit_data",
    "load_audit_model",
    "select_groups",
]

MSG_NO_MODEL_FILE = "The model file {path} does not exist."
MSG_MODEL_SPEC = (
    "Cannot read the model {spec!r}: give a .safetensors file written by trustlab, an .onnx "
    "file, or module:function (or path/to/file.py:function) returning a torch.nn.Module."
)
MSG_IMPORT_FAILED = "Cannot import {module!r} for the model {spec!r}: {error}"
MSG_NO_FUNCTION = "The module {module!r} has no function {function!r} (from the model {spec!r})."
MSG_CALL_FAILED = "Calling {spec!r} to build the model failed: {error}"
MSG_NOT_A_MODULE = "{spec!r} returned a {type}, not a torch.nn.Module."
MSG_NO_DATA = (
    "Cannot read the data {spec!r}: give an .npz file (arrays x and y) or a registered data "
    "set name ({known}), optionally with a split as name:split."
)
MSG_NPZ_NO_KEY = (
    "The data file {path} has no array {key!r}; an audit .npz needs x (inputs) and y (integer "
    "labels). Arrays present: {present}."
)
MSG_NPZ_PICKLED = (
    "{path}: array {key!r} holds Python objects (dtype=object), which can only be read by "
    "unpickling; save plain numeric or string arrays."
)
MSG_NOT_NPZ = "{path} is not a readable .npz file: {error}"
MSG_Y_NOT_INT = "The labels y of {name} must be integers (class codes); got dtype {dtype}."
MSG_Y_SHAPE = "The labels y of {name} must be 1-D, one per example; got shape {shape}."
MSG_EMPTY = "The data {name} hold no examples."
MSG_LENGTH = "{what} of {name} has {got} entries but x has {expected} examples."
MSG_X_NOT_FINITE = (
    "The inputs x of {name} hold NaN or infinite values (first at example {index}); clean or "
    "impute them before auditing."
)
MSG_X_NOT_NUMERIC = "The inputs x of {name} must be numeric; got dtype {dtype}."
MSG_MEMBER_VALUES = "The member flags of {name} must be 0 or 1 (or booleans); got {values}."
MSG_GROUP_NAMES = (
    "{name}: group_names has {got} names but groups has {expected} columns; give one name per "
    "column."
)
MSG_OUTPUT_NOT_TENSOR = "The model returned a {type}, not a tensor of logits."
MSG_OUTPUT_SHAPE = (
    "The model's output has shape {shape} for a batch of {batch} examples of {name}; the audit "
    "needs logits of shape (batch, n_classes)."
)
MSG_OUTPUT_CLASSES = (
    "The model outputs {k} class scores but the labels of {name} go up to {max_label}: the "
    "model and the labels do not match (wrong data set, or labels not coded 0..n_classes-1?)."
)
MSG_MODEL_FAILED = "The model failed on a batch of {name} (inputs of shape {shape}): {error}"
MSG_UNKNOWN_SENSITIVE = (
    "The data {name} have no sensitive attribute {column!r}; the attributes are {known}."
)
MSG_NO_SENSITIVE = (
    "--sensitive {column!r} was given but the data {name} hold no sensitive attributes; add a "
    "groups array (or sensitive_<name> arrays) to the .npz."
)
MSG_ONE_GROUP = (
    "The sensitive attribute {column!r} of {name} has a single group ({group!r}); fairness "
    "compares groups, so it needs at least two."
)
MSG_DEVICE = "Cannot use device {device!r}: {error}"

IMAGE_EPS = {"digits": 0.1, "cifar10": 8 / 255}


@dataclass
class AuditData:
    """The examples an audit runs on.

    Attributes
    ----------
    name : str
        Shown in the report.
    x : ndarray of float32, shape (n, ...)
    y : ndarray of int64, shape (n,)
    groups : dict of str to ndarray, shape (n,)
        The sensitive attributes, by name (codes or strings).
    member : ndarray of bool, shape (n,), or None
        True for the examples the model trained on.
    x_train, y_train : ndarray or None
        The model's training data, when given apart (``--train-data``).
    classes : list of str or None
        Names of the classes.
    """

    name: str
    x: np.ndarray
    y: np.ndarray
    groups: dict[str, np.ndarray] = field(default_factory=dict)
    member: np.ndarray | None = None
    x_train: np.ndarray | None = None
    y_train: np.ndarray | None = None
    classes: list[str] | None = None

    @property
    def n_examples(self) -> int:
        return int(self.x.shape[0])

    @property
    def is_image(self) -> bool:
        """Inputs of shape (n, channels, height, width)."""
        return self.x.ndim == 4

    @property
    def bounds(self) -> tuple[float, float]:
        """The valid input range: [0, 1] when the data lie in it, else their min and max."""
        parts = [self.x] + ([self.x_train] if self.x_train is not None else [])
        low = float(min(part.min() for part in parts))
        high = float(max(part.max() for part in parts))
        if low >= 0.0 and high <= 1.0:
            return (0.0, 1.0)
        return (low, high)

    def default_eps(self) -> float:
        """The Linf radius used when none is given: the data set's usual one, else 8/255 of
        the input range for images and 0.1 of it for other data."""
        base = self.name.split(":")[0]
        low, high = self.bounds
        if base in IMAGE_EPS:
            return IMAGE_EPS[base] * (high - low)
        return (8 / 255 if self.is_image else 0.1) * (high - low)

    def digest(self) -> str:
        """SHA-256 of every array, for the cache key."""
        hasher = hashlib.sha256()
        arrays: list[tuple[str, np.ndarray | None]] = [
            ("x", self.x),
            ("y", self.y),
            ("member", self.member),
            ("x_train", self.x_train),
            ("y_train", self.y_train),
        ]
        arrays += [(f"group:{name}", values) for name, values in sorted(self.groups.items())]
        for key, value in arrays:
            hasher.update(key.encode())
            if value is None:
                hasher.update(b"none")
                continue
            array = np.ascontiguousarray(value)
            hasher.update(f"{array.dtype.str}{array.shape}".encode())
            hasher.update(array.tobytes())
        return hasher.hexdigest()

    def describe(self, digest: str | None = None) -> dict[str, Any]:
        return {
            "name": self.name,
            "n_examples": self.n_examples,
            "input_shape": list(self.x.shape[1:]),
            "n_labels": int(self.y.max()) + 1,
            "sensitive_attributes": sorted(self.groups),
            "has_member_flags": self.member is not None,
            "n_train_examples": None if self.x_train is None else int(self.x_train.shape[0]),
            "bounds": list(self.bounds),
            "sha256": digest or self.digest(),
        }


@dataclass
class AuditModel:
    """The model under audit and where it came from."""

    module: nn.Module
    source: str
    kind: str
    digest: str
    differentiable: bool
    architecture: tuple[str, dict[str, Any]] | None

    def describe(self) -> dict[str, Any]:
        n_parameters = sum(int(p.numel()) for p in self.module.parameters())
        return {
            "source": self.source,
            "kind": self.kind,
            "class": type(self.module).__name__,
            "architecture": None if self.architecture is None else self.architecture[0],
            "arguments": None if self.architecture is None else self.architecture[1],
            "n_parameters": n_parameters,
            "differentiable": self.differentiable,
            "sha256": self.digest,
        }


# -------------------------------------------------------------------------------------------
# Models


def _state_digest(module: nn.Module) -> str:
    hasher = hashlib.sha256(type(module).__qualname__.encode())
    for key, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().to("cpu").contiguous()
        hasher.update(f"{key}{value.dtype}{tuple(value.shape)}".encode())
        hasher.update(value.view(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return hasher.hexdigest()


def _architecture_of(module: nn.Module) -> tuple[str, dict[str, Any]] | None:
    record = getattr(module, "trustlab_architecture", None)
    if isinstance(record, Mapping) and isinstance(record.get("name"), str):
        return str(record["name"]), dict(record.get("arguments") or {})
    return None


def _import_function(spec: str) -> nn.Module:
    target, _, function = spec.rpartition(":")
    try:
        if target.endswith(".py"):
            path = Path(target)
            if not path.is_file():
                raise ConfigurationError(MSG_NO_MODEL_FILE.format(path=path))
            name = f"_trustlab_audit_{hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]}"
            loader_spec = importlib.util.spec_from_file_location(name, path)
            if loader_spec is None or loader_spec.loader is None:
                raise ConfigurationError(MSG_MODEL_SPEC.format(spec=spec))
            module = importlib.util.module_from_spec(loader_spec)
            sys.modules[name] = module
            loader_spec.loader.exec_module(module)
        else:
            # As `python -m` would: modules in the working folder can be named.
            added = os.getcwd() not in sys.path
            if added:
                sys.path.insert(0, os.getcwd())
            try:
                module = importlib.import_module(target)
            finally:
                if added:
                    sys.path.remove(os.getcwd())
    except TrustlabError:
        raise
    except Exception as err:  # any import-time error of user code
        raise ConfigurationError(
            MSG_IMPORT_FAILED.format(module=target, spec=spec, error=f"{type(err).__name__}: {err}")
        ) from None
    factory = getattr(module, function, None)
    if not callable(factory):
        raise ConfigurationError(
            MSG_NO_FUNCTION.format(module=target, function=function, spec=spec)
        )
    try:
        built = factory()
    except TrustlabError:
        raise
    except Exception as err:  # any error of user code
        raise ConfigurationError(
            MSG_CALL_FAILED.format(spec=spec, error=f"{type(err).__name__}: {err}")
        ) from None
    if not isinstance(built, nn.Module):
        raise ConfigurationError(MSG_NOT_A_MODULE.format(spec=spec, type=type(built).__name__))
    return built


def _device(device: str | torch.device) -> torch.device:
    try:
        resolved = torch.device(device)
        torch.empty(0, device=resolved)
    except (RuntimeError, AssertionError) as err:
        raise ConfigurationError(
            MSG_DEVICE.format(device=str(device), error=str(err).splitlines()[0])
        ) from None
    return resolved


def load_audit_model(
    model: nn.Module | PathLike, *, device: str | torch.device = "cpu"
) -> AuditModel:
    """Read the model to audit and move it to ``device`` (ONNX models stay on the CPU).

    Raises
    ------
    ConfigurationError, WeightsError
        With a message saying what was expected.
    """
    target = _device(device)
    if isinstance(model, nn.Module):
        module, source, kind = model, type(model).__name__, "module"
    else:
        spec = str(model)
        path = Path(spec)
        suffix = path.suffix.lower()
        if suffix in (".safetensors", ".onnx"):
            if not path.is_file():
                raise ConfigurationError(MSG_NO_MODEL_FILE.format(path=path))
            if suffix == ".onnx":
                onnx = OnnxClassifier(path)
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                return AuditModel(onnx.eval(), spec, "onnx", digest, False, None)
            module, kind = load_model(path), "safetensors"
        elif ":" in spec and not path.exists():
            module, kind = _import_function(spec), "callable"
        else:
            raise ConfigurationError(MSG_MODEL_SPEC.format(spec=spec))
        source = spec
    module = module.to(target).eval()
    return AuditModel(module, source, kind, _state_digest(module), True, _architecture_of(module))


# -------------------------------------------------------------------------------------------
# Data


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(MSG_NOT_NPZ.format(path=path, error=err)) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(MSG_NOT_NPZ.format(path=path, error="it holds a single array"))
    arrays = {}
    with loaded:
        for key in loaded.files:
            try:
                arrays[key] = np.asarray(loaded[key])
            except ValueError:
                raise DataError(MSG_NPZ_PICKLED.format(path=path, key=key)) from None
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(
                MSG_NPZ_NO_KEY.format(path=path, key=key, present=sorted(arrays) or "none")
            )
    return arrays


def _groups_from_npz(arrays: Mapping[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    groups: dict[str, np.ndarray] = {}
    if "groups" in arrays:
        values = arrays["groups"]
        if values.ndim == 1:
            groups["groups"] = values
        else:
            columns = values.reshape(values.shape[0], -1)
            names = (
                [str(item) for item in arrays["group_names"].reshape(-1)]
                if "group_names" in arrays
                else [f"groups[{i}]" for i in range(columns.shape[1])]
            )
            if len(names) != columns.shape[1]:
                raise DataError(
                    MSG_GROUP_NAMES.format(name=name, got=len(names), expected=columns.shape[1])
                )
            groups.update({column: columns[:, i] for i, column in enumerate(names)})
    for key, values in arrays.items():
        if key.startswith("sensitive_") and len(key) > len("sensitive_"):
            groups[key[len("sensitive_") :]] = values.reshape(-1)
    return groups


def _from_spec(spec: str) -> tuple[str, dict[str, np.ndarray], list[str] | None]:
    """(name, arrays, classes) of an .npz path or a registered data set name."""
    path = Path(spec)
    if path.suffix.lower() == ".npz" or path.is_file():
        return path.name, _read_npz(path), None
    base, _, split = spec.partition(":")
    options = {"split": split} if split else {}
    try:
        dataset = load_dataset(base, **options)
    except TrustlabError as err:
        if base not in list_datasets():
            raise DataError(
                MSG_NO_DATA.format(spec=spec, known=", ".join(list_datasets()))
            ) from None
        raise err
    arrays: dict[str, np.ndarray] = {"x": dataset.x, "y": dataset.y}
    classes = None
    if isinstance(dataset, TabularDataset):
        for attribute, codes in dataset.sensitive.items():
            labels = dataset.sensitive_labels[attribute]
            arrays[f"sensitive_{attribute}"] = np.asarray(labels)[codes]
        classes = list(dataset.label_names)
    else:
        classes = list(getattr(dataset, "classes", []) or []) or None
    return spec, arrays, classes


def _check_xy(x: np.ndarray, y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(MSG_X_NOT_NUMERIC.format(name=name, dtype=x.dtype))
    if y.ndim != 1:
        raise DataError(MSG_Y_SHAPE.format(name=name, shape=y.shape))
    if y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        raise DataError(MSG_Y_NOT_INT.format(name=name, dtype=y.dtype))
    if x.shape[0] == 0:
        raise DataError(MSG_EMPTY.format(name=name))
    if len(y) != x.shape[0]:
        raise DataError(MSG_LENGTH.format(what="y", name=name, got=len(y), expected=x.shape[0]))
    x = np.ascontiguousarray(x, dtype=np.float32)
    finite = np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
    if not finite.all():
        raise DataError(MSG_X_NOT_FINITE.format(name=name, index=int(np.argmin(finite))))
    return x, y.astype(np.int64)


def load_audit_data(data: AuditData | PathLike, *, train_data: PathLike | None = None) -> AuditData:
    """Read and check the audit data (and the model's training data, if given apart).

    Raises
    ------
    DataError
        For a file without ``x`` or ``y``, non-integer labels, NaN inputs, mismatched lengths.
    """
    if isinstance(data, AuditData):
        audit = data
        audit.x, audit.y = _check_xy(np.asarray(audit.x), np.asarray(audit.y), audit.name)
    else:
        name, arrays, classes = _from_spec(str(data))
        x, y = _check_xy(arrays["x"], arrays["y"], name)
        member = arrays.get("member")
        audit = AuditData(
            name=name,
            x=x,
            y=y,
            groups=_groups_from_npz(arrays, name),
            member=member,
            classes=classes,
        )
    n = audit.n_examples
    if audit.member is not None:
        member = np.asarray(audit.member).reshape(-1)
        if len(member) != n:
            raise DataError(
                MSG_LENGTH.format(what="member", name=audit.name, got=len(member), expected=n)
            )
        found = set(np.unique(member).tolist())
        if not found <= {0, 1}:
            raise DataError(MSG_MEMBER_VALUES.format(name=audit.name, values=sorted(found)[:5]))
        audit.member = member.astype(bool)
    for column, values in audit.groups.items():
        if len(values) != n:
            raise DataError(
                MSG_LENGTH.format(
                    what=f"sensitive attribute {column!r}",
                    name=audit.name,
                    got=len(values),
                    expected=n,
                )
            )
    if train_data is not None:
        train_name, arrays, _ = _from_spec(str(train_data))
        audit.x_train, audit.y_train = _check_xy(arrays["x"], arrays["y"], train_name)
    elif audit.x_train is not None and audit.y_train is not None:
        audit.x_train, audit.y_train = _check_xy(
            np.asarray(audit.x_train), np.asarray(audit.y_train), f"{audit.name} (train)"
        )
    return audit


def select_groups(data: AuditData, sensitive: Sequence[str] | None) -> dict[str, np.ndarray]:
    """The sensitive attributes the fairness section compares.

    Named attributes must exist and hold at least two groups (else :class:`DataError`); with
    ``sensitive=None`` every attribute of the data with two or more groups is used.
    """
    if sensitive is None:
        return {
            column: values for column, values in data.groups.items() if len(np.unique(values)) >= 2
        }
    if not data.groups and sensitive:
        raise DataError(MSG_NO_SENSITIVE.format(column=sensitive[0], name=data.name))
    chosen = {}
    for column in sensitive:
        if column not in data.groups:
            raise DataError(
                MSG_UNKNOWN_SENSITIVE.format(
                    name=data.name, column=column, known=", ".join(sorted(data.groups))
                )
            )
        values = data.groups[column]
        unique = np.unique(values)
        if len(unique) < 2:
            raise DataError(
                MSG_ONE_GROUP.format(column=column, name=data.name, group=unique[0].item())
            )
        chosen[column] = values
    return chosen


def check_model_fits_data(model: AuditModel, data: AuditData, *, n_check: int = 32) -> int:
    """Run the model on a few examples; return the number of classes it outputs.

    Raises
    ------
    DataError
        If the model fails on the inputs, does not return (batch, n_classes) logits, or has
        fewer classes than the labels need.
    """
    batches = [(data.name, data.x[:n_check])]
    if data.x_train is not None:
        batches.append((f"{data.name} (train)", data.x_train[:n_check]))
    labels = [data.y] + ([data.y_train] if data.y_train is not None else [])
    max_label = int(max(int(part.max()) for part in labels))
    device = next(iter(model.module.parameters()), torch.empty(0)).device
    n_classes = 0
    for name, batch in batches:
        inputs = torch.from_numpy(batch).to(device)
        try:
            with torch.no_grad():
                output = model.module(inputs)
        except TrustlabError:
            raise
        except Exception as err:  # the user's model may raise anything on a wrong shape
            raise DataError(
                MSG_MODEL_FAILED.format(
                    name=name, shape=tuple(batch.shape), error=str(err).splitlines()[0]
                )
            ) from None
        if not isinstance(output, torch.Tensor):
            raise DataError(MSG_OUTPUT_NOT_TENSOR.format(type=type(output).__name__))
        if output.dim() != 2 or output.shape[0] != batch.shape[0]:
            raise DataError(
                MSG_OUTPUT_SHAPE.format(shape=tuple(output.shape), batch=batch.shape[0], name=name)
            )
        n_classes = int(output.shape[1])
        if n_classes <= max_label or n_classes < 2:
            raise DataError(
                MSG_OUTPUT_CLASSES.format(k=n_classes, name=data.name, max_label=max_label)
            )
    return n_classes

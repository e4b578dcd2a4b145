"""Reading and writing model weights without running code from the file.

Threat model: a weights file is hostile until proven otherwise. Python pickles (what
``torch.save`` writes) can run arbitrary code when unpickled, so ``.pt``/``.pth``/``.bin``
files are read only with ``torch.load(..., map_location="cpu", weights_only=True)``, whose
restricted unpickler refuses anything but tensors and plain containers. safetensors files
hold only a JSON header and raw bytes. The architecture always comes from trustlab's own
registry (``trustlab.core.models``); a file can at most name a registered architecture and
its JSON arguments. This module bounds neither memory nor time: the server reads submitted
files in a separate, limited process.

Files written by :func:`save_model` are safetensors whose metadata holds
``trustlab.architecture`` (the registered name) and ``trustlab.arguments`` (JSON with sorted
keys), so that :func:`load_model` can rebuild the model in one line. Saving the same model twice
gives byte-identical files.

Examples
--------
>>> import tempfile, pathlib
>>> from trustlab.core.models import build_model
>>> model = build_model("mlp", arguments={"in_features": 4})
>>> path = pathlib.Path(tempfile.mkdtemp()) / "target.safetensors"
>>> save_model(model, path)
>>> load_model(path).trustlab_architecture["arguments"]["in_features"]
4
"""

from __future__ import annotations

import json
import os
import re
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save as safetensors_save
from torch import nn

from trustlab.core.errors import ConfigurationError, TrustlabError, WeightsError
from trustlab.core.models import (
    ARCHITECTURE_ATTRIBUTE,
    ARCHITECTURES,
    build_model,
    resolve_arguments,
)
from trustlab.core.typing import PathLike

__all__ = [
    "ARCHITECTURE_KEY",
    "ARGUMENTS_KEY",
    "load_model",
    "load_state_dict_strict",
    "read_architecture",
    "read_state_dict",
    "save_model",
]

#: safetensors metadata key holding the registered architecture name.
ARCHITECTURE_KEY = "trustlab.architecture"
#: safetensors metadata key holding the constructor arguments as sorted-key JSON.
ARGUMENTS_KEY = "trustlab.arguments"

SAFETENSORS_SUFFIXES = frozenset({".safetensors"})
TORCH_SUFFIXES = frozenset({".pt", ".pth", ".bin"})
ACCEPTED_FORMATS = (
    "safetensors (.safetensors) or a PyTorch state dict saved with torch.save "
    "(.pt, .pth, .bin; read with weights_only=True)"
)
STATE_DICT_WRAPPER_KEYS = ("state_dict", "model_state_dict")
MAX_LISTED_KEYS = 5

MSG_NO_ARCHITECTURE = (
    "The model was not built by trustlab.core.models.build_model, so its architecture is "
    "unknown. Build it with build_model(name, arguments=...) or pass architecture= (and "
    "arguments=) to save_model."
)
MSG_ARGUMENTS_WITHOUT_ARCHITECTURE = (
    "arguments= was given without architecture= and the model records no architecture. "
    "Pass architecture= too."
)
MSG_RESERVED_METADATA = (
    "The metadata key {key!r} is reserved for trustlab; pick another key for your metadata."
)
MSG_METADATA_NOT_STR = (
    "safetensors metadata must map str to str; the key {key!r} has a value of type {type}. "
    "Convert it with str() or json.dumps() first."
)
MSG_MODEL_MISMATCH = (
    "The model does not match architecture {name!r} with arguments {arguments}, so the file "
    "could not be loaded again: {detail}"
)
MSG_WRITE_FAILED = "Could not write the weights file {path}: {error}"
MSG_NOT_FOUND = "The weights file {path} does not exist."
MSG_READ_FAILED = "Could not read the weights file {path}: {error}"
MSG_UNKNOWN_FORMAT = (
    "The weights file {path} has an unknown extension and its first bytes match no accepted "
    "format. Accepted formats: {formats}."
)
MSG_CORRUPT_SAFETENSORS = (
    "The weights file {path} is not a valid safetensors file (corrupt or truncated?): {error}"
)
MSG_CORRUPT_TORCH = (
    "The weights file {path} could not be read as a PyTorch state dict (corrupt or "
    "truncated?): {error}"
)
MSG_UNSAFE_PICKLE = (
    "Refused to load {path}: it refers to the Python object {name}, and objects other than "
    "tensors and plain containers could run code when unpickled. Save only the state dict, "
    "e.g. torch.save(model.state_dict(), path), or better "
    "safetensors.torch.save_file(model.state_dict(), path)."
)
MSG_UNPICKLER_REFUSED = "the weights-only unpickler refused it: "
# torch.load(weights_only=True) reports a refused global as "... GLOBAL posix.system ...".
WEIGHTS_ONLY_FAILED = "Weights only load failed"
UNSAFE_GLOBAL_RE = re.compile(r"GLOBAL ([\w.]+)")
UNSUPPORTED_OPERAND_RE = re.compile(r"Unsupported operand \S+")
MSG_NOT_A_STATE_DICT = (
    "The weights file {path} holds {what}, not a state dict. Expected a flat mapping from "
    "parameter names (str) to tensors, optionally under a 'state_dict' key."
)
MSG_BAD_ENTRY = (
    "The weights file {path} is not a flat state dict: the entry {key!r} is a {type}, "
    "expected a tensor."
)
MSG_BAD_KEY = "The weights file {path} has a non-string key {key!r}; keys must be str."
MSG_NO_ARCHITECTURE_METADATA = (
    "The weights file {path} does not say which architecture it is for (no {key!r} metadata). "
    "Pass the architecture explicitly: model = build_model(name, arguments=...) then "
    "load_state_dict_strict(model, read_state_dict(path))."
)
MSG_NOT_SAFETENSORS = (
    "Only safetensors files written by trustlab carry an architecture; {path} is not one. "
    "Pass the architecture explicitly: model = build_model(name, arguments=...) then "
    "load_state_dict_strict(model, read_state_dict(path))."
)
MSG_BAD_ARGUMENTS_METADATA = (
    "The {key!r} metadata of {path} must be a JSON object of constructor arguments. Got {value!r}."
)
MSG_CANNOT_REBUILD = "Cannot rebuild the model described in {path}: {error}"
MSG_STATE_DICT_NOT_MAPPING = "A state dict must be a mapping from str to tensors; got {type}."
MSG_MISSING_KEYS = "missing keys ({count}): {keys}"
MSG_MORE_KEYS = " and {count} more"
MSG_UNEXPECTED_KEYS = "unexpected keys ({count}): {keys}"
MSG_PREFIX_HINT = (
    " (the file's keys start with {prefix!r}, as saved from DataParallel or a wrapper; strip "
    "that prefix)"
)
MSG_SHAPE_MISMATCH = "{key}: expected {expected}, got {got}"
MSG_DTYPE_MISMATCH = "{key}: expected {kind} values like {expected}, got {got}"
MSG_NOT_STRIDED = "{key}: expected a dense tensor, got layout {layout}"
MSG_NOT_FINITE = "{key}: contains {count} NaN or infinite value(s)"
MSG_STATE_DICT_REFUSED = "The weights do not fit the model: {problems}."
MSG_LOAD_FAILED = "The weights could not be loaded into the model: {error}"


# --------------------------------------------------------------------------------------------
# Writing


def _architecture_of(
    model: nn.Module, architecture: str | None, arguments: Mapping[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    record = getattr(model, ARCHITECTURE_ATTRIBUTE, None)
    recorded_name = record.get("name") if isinstance(record, Mapping) else None
    recorded_arguments = record.get("arguments") if isinstance(record, Mapping) else None
    if architecture is None:
        if recorded_name is None:
            raise WeightsError(
                MSG_ARGUMENTS_WITHOUT_ARCHITECTURE if arguments is not None else MSG_NO_ARCHITECTURE
            )
        architecture = str(recorded_name)
    if (
        arguments is None
        and architecture == recorded_name
        and isinstance(recorded_arguments, Mapping)
    ):
        arguments = recorded_arguments
    return architecture, resolve_arguments(architecture, arguments)


def _check_model_fits(model: nn.Module, name: str, arguments: dict[str, Any]) -> None:
    """Build the architecture on the meta device (no memory, no RNG) and compare state dicts."""
    with torch.device("meta"):
        reference = ARCHITECTURES.get(name)(**arguments)
    try:
        load_state_dict_strict(reference, model.state_dict(), check_values=False)
    except WeightsError as err:
        raise WeightsError(
            MSG_MODEL_MISMATCH.format(
                name=name, arguments=json.dumps(arguments, sort_keys=True), detail=err
            )
        ) from None


def _canonical_safetensors(data: bytes) -> bytes:
    """Rewrite a safetensors blob's header with the metadata keys sorted.

    safetensors (0.4 to at least 0.8) keeps ``__metadata__`` in a Rust ``HashMap``, so the
    order of its keys, and hence the file's bytes, changes from call to call. The tensor
    entries are already in a fixed order (by dtype alignment, then name) and their offsets
    do not depend on the header, so only the header is rewritten.
    """
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    metadata = header.pop("__metadata__", None)
    ordered: dict[str, Any] = {}
    if metadata:
        ordered["__metadata__"] = dict(sorted(metadata.items()))
    ordered.update(header)
    text = json.dumps(ordered, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8-byte alignment
    return struct.pack("<Q", len(text)) + text + data[8 + header_len :]


def _write_atomically(path: Path, data: bytes) -> None:
    tmp_name: str | None = None
    try:
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
        ) as handle:
            tmp_name = handle.name
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as err:
        raise WeightsError(MSG_WRITE_FAILED.format(path=path, error=err)) from err
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)


def save_model(
    model: nn.Module,
    path: PathLike,
    *,
    metadata: Mapping[str, str] | None = None,
    architecture: str | None = None,
    arguments: Mapping[str, Any] | None = None,
) -> None:
    """Save a model's state dict as safetensors, with the architecture needed to rebuild it.

    The file's metadata holds ``trustlab.architecture`` and ``trustlab.arguments`` (the full
    constructor arguments as JSON with sorted keys) next to ``metadata``. Tensors are stored
    contiguous and on the CPU; the file is written to a temporary file and moved into place,
    so readers never see a half-written file. The same model saved twice gives byte-identical
    files.

    Parameters
    ----------
    model : torch.nn.Module
        Usually built with :func:`trustlab.core.models.build_model`, which records its
        architecture.
    path : str or os.PathLike
        Destination, conventionally ending in ``.safetensors``. Its folder must exist.
    metadata : Mapping[str, str], optional
        Extra string metadata to store. The two ``trustlab.*`` keys above are reserved.
    architecture : str, optional
        Registered architecture name, overriding the one recorded on the model (needed if the
        model was not built by ``build_model``).
    arguments : Mapping[str, Any], optional
        Constructor arguments, overriding the recorded ones. Defaults are filled in.

    Raises
    ------
    WeightsError
        If the architecture is unknown, the model's state dict does not match it, or the file
        cannot be written.
    ConfigurationError
        If ``metadata`` uses a reserved key or a non-string value, or ``arguments`` are invalid.
    UnknownNameError
        If ``architecture`` is not registered.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from trustlab.core.models import build_model
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "cnn.safetensors"
    >>> save_model(build_model("digits-cnn"), path, metadata={"task": "digits"})
    >>> read_architecture(path)
    ('digits-cnn', {'in_channels': 1, 'num_classes': 10})
    """
    name, resolved = _architecture_of(model, architecture, arguments)
    _check_model_fits(model, name, resolved)
    extra = dict(metadata or {})
    for key, value in extra.items():
        if key in (ARCHITECTURE_KEY, ARGUMENTS_KEY):
            raise ConfigurationError(MSG_RESERVED_METADATA.format(key=key))
        if not isinstance(key, str) or not isinstance(value, str):
            raise ConfigurationError(
                MSG_METADATA_NOT_STR.format(key=key, type=type(value).__name__)
            )
    extra[ARCHITECTURE_KEY] = name
    extra[ARGUMENTS_KEY] = json.dumps(resolved, sort_keys=True)
    # clone() gives every entry its own storage: safetensors refuses shared (tied) tensors.
    tensors = {
        key: value.detach().to("cpu").contiguous().clone()
        for key, value in model.state_dict().items()
    }
    blob = _canonical_safetensors(safetensors_save(tensors, metadata=extra))
    _write_atomically(Path(path), blob)


# --------------------------------------------------------------------------------------------
# Reading


def _sniff(path: Path) -> str | None:
    """Guess the format from the first bytes: "safetensors", "torch" or None."""
    with path.open("rb") as handle:
        head = handle.read(9)
        size = os.fstat(handle.fileno()).st_size
    if len(head) == 9:
        (header_len,) = struct.unpack("<Q", head[:8])
        if 2 <= header_len <= size - 8 and head[8:9] == b"{":
            return "safetensors"
    if head[:4] == b"PK\x03\x04":  # zip archive: torch.save's default since PyTorch 1.6
        return "torch"
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:  # pickle protocol 2 to 5
        return "torch"
    return None


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in SAFETENSORS_SUFFIXES:
        return "safetensors"
    if suffix in TORCH_SUFFIXES:
        return "torch"
    sniffed = _sniff(path)
    if sniffed is None:
        raise WeightsError(MSG_UNKNOWN_FORMAT.format(path=path, formats=ACCEPTED_FORMATS))
    return sniffed


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            names = list(handle.keys())
            return {key: handle.get_tensor(key) for key in names}
    except Exception as err:  # safetensors raises SafetensorError, OSError or ValueError
        raise WeightsError(MSG_CORRUPT_SAFETENSORS.format(path=path, error=err)) from None


def _read_torch(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # UnpicklingError, RuntimeError, EOFError, ...
        raise _torch_load_error(path, str(err)) from None
    return _as_state_dict(obj, path)


def _torch_load_error(path: Path, text: str) -> WeightsError:
    """Turn torch.load's error into ours, without torch's advice to drop weights_only."""
    if WEIGHTS_ONLY_FAILED not in text:
        return WeightsError(MSG_CORRUPT_TORCH.format(path=path, error=text.strip()))
    refused_global = UNSAFE_GLOBAL_RE.search(text)
    if refused_global is not None:
        return WeightsError(MSG_UNSAFE_PICKLE.format(path=path, name=refused_global.group(1)))
    operand = UNSUPPORTED_OPERAND_RE.search(text)
    detail = operand.group(0) if operand is not None else "unsupported pickle content"
    return WeightsError(MSG_CORRUPT_TORCH.format(path=path, error=MSG_UNPICKLER_REFUSED + detail))


def _as_state_dict(obj: object, path: Path) -> dict[str, torch.Tensor]:
    if not isinstance(obj, Mapping):
        what = "a tensor" if isinstance(obj, torch.Tensor) else f"a {type(obj).__name__}"
        raise WeightsError(MSG_NOT_A_STATE_DICT.format(path=path, what=what))
    for wrapper in STATE_DICT_WRAPPER_KEYS:
        inner = obj.get(wrapper)
        if isinstance(inner, Mapping):
            obj = inner
            break
    state: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise WeightsError(MSG_BAD_KEY.format(path=path, key=key))
        if not isinstance(value, torch.Tensor):
            raise WeightsError(MSG_BAD_ENTRY.format(path=path, key=key, type=type(value).__name__))
        state[key] = value.detach()
    return state


def _existing(path: PathLike) -> Path:
    resolved = Path(path)
    if not resolved.is_file():
        raise WeightsError(MSG_NOT_FOUND.format(path=resolved))
    return resolved


def read_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """Read a state dict from a safetensors or PyTorch file without running code from it.

    ``.safetensors`` files are read with safetensors; ``.pt``, ``.pth`` and ``.bin`` files with
    ``torch.load(path, map_location="cpu", weights_only=True)`` only, which refuses pickles
    that would import or call anything but tensors and plain containers. Other extensions are
    recognised by their first bytes (safetensors header, zip, pickle).

    Parameters
    ----------
    path : str or os.PathLike
        The weights file.

    Returns
    -------
    dict[str, torch.Tensor]
        Parameter and buffer names to CPU tensors. A ``{"state_dict": {...}}`` (or
        ``"model_state_dict"``) checkpoint is unwrapped one level.

    Raises
    ------
    WeightsError
        If the file is missing, corrupt or truncated, in an unknown format, holds anything but a
        flat ``str -> Tensor`` mapping, or contains objects that would run code when unpickled.

    Examples
    --------
    >>> import tempfile, pathlib, torch
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "w.pt"
    >>> torch.save({"weight": torch.ones(2)}, path)
    >>> read_state_dict(path)
    {'weight': tensor([1., 1.])}
    """
    resolved = _existing(path)
    try:
        fmt = _format_of(resolved)
    except OSError as err:
        raise WeightsError(MSG_READ_FAILED.format(path=resolved, error=err)) from err
    if fmt == "safetensors":
        return _read_safetensors(resolved)
    return _read_torch(resolved)


def read_architecture(path: PathLike) -> tuple[str, dict[str, Any]]:
    """Read the architecture name and arguments that :func:`save_model` stored in a file.

    Parameters
    ----------
    path : str or os.PathLike
        A safetensors file.

    Returns
    -------
    tuple[str, dict[str, Any]]
        The registered architecture name and its constructor arguments.

    Raises
    ------
    WeightsError
        If the file is not safetensors, is corrupt, or carries no architecture metadata.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from trustlab.core.models import build_model
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.safetensors"
    >>> save_model(build_model("mlp", arguments={"in_features": 3, "hidden": []}), path)
    >>> read_architecture(path)
    ('mlp', {'dropout': 0.0, 'hidden': [], 'in_features': 3, 'num_classes': 2})
    """
    resolved = _existing(path)
    try:
        is_safetensors = _format_of(resolved) == "safetensors"
    except OSError as err:
        raise WeightsError(MSG_READ_FAILED.format(path=resolved, error=err)) from err
    if not is_safetensors:
        raise WeightsError(MSG_NOT_SAFETENSORS.format(path=resolved))
    try:
        with safe_open(str(resolved), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
    except Exception as err:  # SafetensorError, OSError, ValueError
        raise WeightsError(MSG_CORRUPT_SAFETENSORS.format(path=resolved, error=err)) from None
    name = metadata.get(ARCHITECTURE_KEY)
    if not name:
        raise WeightsError(MSG_NO_ARCHITECTURE_METADATA.format(path=resolved, key=ARCHITECTURE_KEY))
    raw = metadata.get(ARGUMENTS_KEY, "{}")
    try:
        arguments = json.loads(raw)
    except ValueError:
        arguments = None
    if not isinstance(arguments, dict):
        raise WeightsError(
            MSG_BAD_ARGUMENTS_METADATA.format(key=ARGUMENTS_KEY, path=resolved, value=raw)
        )
    return name, arguments


def load_model(path: PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """Rebuild a model saved by :func:`save_model` and load its weights.

    The architecture named in the file must be registered in ``trustlab.core.models``; no code
    comes from the file. Building the model does not disturb torch's global random state.
    For a submission scored against a task, build the *task's* architecture instead and use
    :func:`load_state_dict_strict` with :func:`read_state_dict`.

    Parameters
    ----------
    path : str or os.PathLike
        A safetensors file written by :func:`save_model`.
    device : str or torch.device, default="cpu"
        Where to put the model.

    Returns
    -------
    torch.nn.Module
        The model in eval mode, with ``trustlab_architecture`` recorded.

    Raises
    ------
    WeightsError
        If the file is unreadable, names an unregistered architecture or invalid arguments,
        or its weights do not fit.

    Examples
    --------
    >>> import trustlab  # doctest: +SKIP
    >>> model = trustlab.load_model("target.safetensors")  # doctest: +SKIP
    """
    name, arguments = read_architecture(path)
    state_dict = read_state_dict(path)
    try:
        with torch.random.fork_rng(devices=[]):
            model = build_model(name, arguments=arguments)
    except TrustlabError as err:  # unknown architecture or bad arguments in the file
        raise WeightsError(MSG_CANNOT_REBUILD.format(path=path, error=err)) from None
    load_state_dict_strict(model, state_dict)
    return model.to(device).eval()


# --------------------------------------------------------------------------------------------
# Checking


def _kind(tensor: torch.Tensor) -> str:
    if tensor.is_floating_point():
        return "floating-point"
    if tensor.is_complex():
        return "complex"
    return "integer or bool"


def _shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:MAX_LISTED_KEYS])
    hidden = len(keys) - MAX_LISTED_KEYS
    return shown + (MSG_MORE_KEYS.format(count=hidden) if hidden > 0 else "")


def _prefix_hint(missing: list[str], unexpected: list[str]) -> str:
    for prefix in ("module.", "model.", "_orig_mod."):
        if unexpected and all(key.startswith(prefix) for key in unexpected):
            stripped = {key[len(prefix) :] for key in unexpected}
            if stripped >= set(missing):
                return MSG_PREFIX_HINT.format(prefix=prefix)
    return ""


def load_state_dict_strict(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], *, check_values: bool = True
) -> None:
    """Load ``state_dict`` into ``model`` like ``load_state_dict(strict=True)``, but explain.

    Everything is checked before anything is copied, and every problem is listed in one
    message: the first missing and unexpected keys, each shape mismatch as
    ``"layer1.0.conv1.weight: expected (64, 64, 3, 3), got (32, 64, 3, 3)"``, tensors of the
    wrong kind (an integer tensor for a floating-point parameter, ...), and weights that
    contain NaN or infinity.

    Parameters
    ----------
    model : torch.nn.Module
        The model to fill in place.
    state_dict : Mapping[str, torch.Tensor]
        Parameter and buffer names to tensors, e.g. from :func:`read_state_dict`.
    check_values : bool, default=True
        Refuse NaN and infinite values, and copy the tensors into the model. With ``False``
        only names, shapes and dtypes are checked and nothing is copied.

    Raises
    ------
    WeightsError
        If the state dict does not fit the model; the message lists what is wrong.

    Examples
    --------
    >>> from torch import nn
    >>> layer = nn.Linear(2, 1)
    >>> load_state_dict_strict(layer, {"weight": torch.ones(1, 2), "bias": torch.ones(1)})
    >>> load_state_dict_strict(layer, {"weight": torch.ones(1, 3), "bias": torch.ones(1)})
    ... # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    trustlab.core.errors.WeightsError: The weights do not fit the model: weight: ...
    """
    if not isinstance(state_dict, Mapping):
        raise WeightsError(MSG_STATE_DICT_NOT_MAPPING.format(type=type(state_dict).__name__))
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [str(key) for key in state_dict if key not in expected]
    problems: list[str] = []
    if missing:
        problems.append(MSG_MISSING_KEYS.format(count=len(missing), keys=_listing(missing)))
    if unexpected:
        problems.append(
            MSG_UNEXPECTED_KEYS.format(count=len(unexpected), keys=_listing(unexpected))
            + _prefix_hint(missing, unexpected)
        )
    for key, reference in expected.items():
        if key not in state_dict:
            continue
        given = state_dict[key]
        if not isinstance(given, torch.Tensor):
            problems.append(
                MSG_DTYPE_MISMATCH.format(
                    key=key, kind=_kind(reference), expected=reference.dtype, got=type(given)
                )
            )
        elif given.layout != torch.strided:
            problems.append(MSG_NOT_STRIDED.format(key=key, layout=given.layout))
        elif _shape(given) != _shape(reference):
            problems.append(
                MSG_SHAPE_MISMATCH.format(key=key, expected=_shape(reference), got=_shape(given))
            )
        elif _kind(given) != _kind(reference):
            problems.append(
                MSG_DTYPE_MISMATCH.format(
                    key=key, kind=_kind(reference), expected=reference.dtype, got=given.dtype
                )
            )
        elif check_values and (given.is_floating_point() or given.is_complex()):
            bad = int((~torch.isfinite(given)).sum())
            if bad:
                problems.append(MSG_NOT_FINITE.format(key=key, count=bad))
    if problems:
        raise WeightsError(MSG_STATE_DICT_REFUSED.format(problems="; ".join(problems)))
    if not check_values:
        return
    try:
        model.load_state_dict(dict(state_dict), strict=True)
    except RuntimeError as err:
        raise WeightsError(MSG_LOAD_FAILED.format(error=err)) from None

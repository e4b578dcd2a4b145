"""The architecture registry and :func:`build_model`, shared by every architecture module.

Architectures are looked up by name, never taken from a submission: a weights file can only
say *which* registered architecture it fits and with which JSON arguments (see
``trustlab.core.weights``), so no code from a team is ever run.
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from torch import nn

from trustlab.core.errors import ConfigurationError
from trustlab.core.registry import Registry

ModelFactory = Callable[..., nn.Module]
F = TypeVar("F", bound=ModelFactory)

#: The attribute :func:`build_model` sets on every model it builds.
ARCHITECTURE_ATTRIBUTE = "trustlab_architecture"

MSG_NOT_KEYWORD_ONLY = (
    "Architecture {name!r} must take keyword-only arguments without *args or **kwargs; "
    "parameter {param!r} is {kind}. Declare it after a bare '*'."
)
MSG_ARGUMENTS_NOT_MAPPING = (
    "The arguments of architecture {name!r} must be a mapping of names to values. "
    "Got {type} instead."
)
MSG_UNKNOWN_ARGUMENTS = (
    "Unknown argument(s) {unknown} for architecture {name!r}. Accepted arguments: {accepted}."
)
MSG_MISSING_ARGUMENTS = (
    "Architecture {name!r} needs the argument(s) {missing}. Accepted arguments: {accepted}."
)
MSG_NOT_JSON = (
    "The argument {arg!r} of architecture {name!r} must be a JSON scalar (None, bool, int, "
    "finite float, str) or a list of them. Got {value!r} instead."
)
MSG_NOT_A_MODULE = "Architecture {name!r} returned {type}, not a torch.nn.Module."

ARCHITECTURES: Registry[ModelFactory] = Registry("architecture")


def register_architecture(name: str) -> Callable[[F], F]:
    """Register a model class or factory under ``name``.

    Every parameter of the constructor must be keyword-only and JSON-serialisable, so that
    ``trustlab.core.weights`` can store the arguments next to the weights and rebuild the
    model later.

    Parameters
    ----------
    name : str
        The architecture's public name, e.g. ``"resnet18"``.

    Returns
    -------
    Callable
        A decorator that registers its argument and returns it unchanged.

    Raises
    ------
    DuplicateNameError
        If ``name`` is already registered.
    ConfigurationError
        If the constructor has positional, ``*args`` or ``**kwargs`` parameters.

    Examples
    --------
    >>> from torch import nn
    >>> @register_architecture("doc-linear")
    ... class DocLinear(nn.Linear):
    ...     def __init__(self, *, in_features: int = 4) -> None:
    ...         super().__init__(in_features, 2)
    >>> build_model("doc-linear").trustlab_architecture
    {'name': 'doc-linear', 'arguments': {'in_features': 4}}
    >>> ARCHITECTURES.remove("doc-linear")
    """

    def decorator(factory: F) -> F:
        for param in inspect.signature(factory).parameters.values():
            if param.kind is not inspect.Parameter.KEYWORD_ONLY:
                raise ConfigurationError(
                    MSG_NOT_KEYWORD_ONLY.format(
                        name=name, param=param.name, kind=param.kind.description
                    )
                )
        ARCHITECTURES.add(name, factory)
        return factory

    return decorator


def list_architectures() -> list[str]:
    """Return the names of all registered architectures, sorted.

    Examples
    --------
    >>> "resnet18" in list_architectures()
    True
    """
    return ARCHITECTURES.names()


def _is_json_value(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, str)):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, (list, tuple)):
        return all(_is_json_value(item) for item in value)
    return False


def _to_json(value: Any) -> Any:
    """A JSON-shaped copy of ``value``: tuples become lists."""
    if isinstance(value, (list, tuple)):
        return [_to_json(item) for item in value]
    return value


def resolve_arguments(name: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check ``arguments`` against architecture ``name`` and fill in the defaults.

    Parameters
    ----------
    name : str
        A registered architecture.
    arguments : Mapping[str, Any] or None
        Keyword arguments for its constructor.

    Returns
    -------
    dict[str, Any]
        All constructor arguments, defaults included, as JSON-shaped values.

    Raises
    ------
    UnknownNameError
        If ``name`` is not registered.
    ConfigurationError
        On unknown or missing argument names, or values that are not JSON scalars or lists.
    """
    factory = ARCHITECTURES.get(name)
    given: Mapping[str, Any] = {} if arguments is None else arguments
    if not isinstance(given, Mapping):
        raise ConfigurationError(
            MSG_ARGUMENTS_NOT_MAPPING.format(name=name, type=type(given).__name__)
        )
    params = inspect.signature(factory).parameters
    accepted = ", ".join(sorted(params)) or "none"
    unknown = sorted(str(key) for key in given if key not in params)
    if unknown:
        raise ConfigurationError(
            MSG_UNKNOWN_ARGUMENTS.format(unknown=", ".join(unknown), name=name, accepted=accepted)
        )
    missing = sorted(
        key for key, param in params.items() if param.default is param.empty and key not in given
    )
    if missing:
        raise ConfigurationError(
            MSG_MISSING_ARGUMENTS.format(missing=", ".join(missing), name=name, accepted=accepted)
        )
    resolved: dict[str, Any] = {}
    for key, param in params.items():
        value = given.get(key, param.default)
        if not _is_json_value(value):
            raise ConfigurationError(MSG_NOT_JSON.format(arg=key, name=name, value=value))
        resolved[key] = _to_json(value)
    # A JSON round trip proves the record can be stored and gives it the same shape on reload.
    return dict(json.loads(json.dumps(resolved, sort_keys=True)))


def build_model(name: str, *, arguments: Mapping[str, Any] | None = None) -> nn.Module:
    """Build a registered architecture and record how it was built.

    The model gets an attribute ``trustlab_architecture = {"name": name, "arguments": {...}}``
    holding every constructor argument, defaults included; ``trustlab.core.weights.save_model``
    stores it so that ``load_model`` can rebuild the same model. Weights are initialised from
    torch's global random generator: call ``torch.manual_seed`` first for reproducible weights.

    Parameters
    ----------
    name : str
        A registered architecture; see :func:`list_architectures`.
    arguments : Mapping[str, Any], optional
        Keyword arguments for the constructor (JSON scalars or lists).

    Returns
    -------
    torch.nn.Module
        The freshly initialised model, in training mode, on the CPU.

    Raises
    ------
    UnknownNameError
        If ``name`` is not registered.
    ConfigurationError
        If an argument is unknown, missing or has an invalid value.

    Examples
    --------
    >>> model = build_model("mlp", arguments={"in_features": 5, "hidden": [8]})
    >>> model.trustlab_architecture["arguments"]
    {'dropout': 0.0, 'hidden': [8], 'in_features': 5, 'num_classes': 2}
    """
    resolved = resolve_arguments(name, arguments)
    model = ARCHITECTURES.get(name)(**resolved)
    if not isinstance(model, nn.Module):
        raise ConfigurationError(MSG_NOT_A_MODULE.format(name=name, type=type(model).__name__))
    setattr(model, ARCHITECTURE_ATTRIBUTE, {"name": name, "arguments": resolved})
    return model

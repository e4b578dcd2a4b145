"""Parameter and tensor checks shared by the extraction pillar.

Every message says which parameter of which class is wrong, what it must be and what it got.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from trustlab.core.errors import ConfigurationError, DataError

MSG_INT = "The {name!r} parameter of {owner} must be an int >= {low}. Got {value!r} instead."
MSG_OPTIONAL_INT = (
    "The {name!r} parameter of {owner} must be None or an int >= {low}. Got {value!r} instead."
)
MSG_FLOAT = (
    "The {name!r} parameter of {owner} must be a finite float {rule}. Got {value!r} instead."
)
MSG_CHOICE = "The {name!r} parameter of {owner} must be one of {choices}. Got {value!r} instead."
MSG_BOOL = "The {name!r} parameter of {owner} must be True or False. Got {value!r} instead."
MSG_STR = "The {name!r} parameter of {owner} must be a non-empty str. Got {value!r} instead."
MSG_OUTPUTS_SHAPE = (
    "{owner}: outputs must be a 2-D float tensor of shape (n_queries, n_outputs); got {what}."
)
MSG_OUTPUTS_NON_FINITE = "{owner}: outputs hold NaN or infinite values in row {index}."
MSG_OUTPUTS_NOT_PROBABILITIES = (
    "{owner} works on probability vectors, but outputs row {index} holds {value} (outside "
    "[0, 1]); apply it to softmax probabilities, not to logits or embeddings."
)
MSG_INPUTS_LENGTH = (
    "{owner}: inputs must have one row per output row; got {n_inputs} inputs for {n_outputs} "
    "outputs."
)
MSG_CLIENT_ID = "{owner}: client_id must be a non-empty str. Got {value!r} instead."


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def check_int(value: object, *, name: str, owner: str, low: int = 1) -> int:
    """Return ``value`` as an int if it is an int >= ``low``, else raise ConfigurationError."""
    if not _is_int(value) or int(value) < low:  # type: ignore[call-overload]
        raise ConfigurationError(MSG_INT.format(name=name, owner=owner, low=low, value=value))
    return int(value)  # type: ignore[call-overload]


def check_optional_int(value: object, *, name: str, owner: str, low: int = 1) -> int | None:
    """Like :func:`check_int`, but ``None`` passes through."""
    if value is None:
        return None
    if not _is_int(value) or int(value) < low:  # type: ignore[call-overload]
        raise ConfigurationError(
            MSG_OPTIONAL_INT.format(name=name, owner=owner, low=low, value=value)
        )
    return int(value)  # type: ignore[call-overload]


def check_float(
    value: object,
    *,
    name: str,
    owner: str,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = False,
    high_inclusive: bool = True,
) -> float:
    """Return ``value`` as a float if it is finite and within the bounds, else raise."""
    ok = _is_real(value) and math.isfinite(float(value))  # type: ignore[arg-type]
    if ok:
        number = float(value)  # type: ignore[arg-type]
        if low is not None:
            ok = number >= low if low_inclusive else number > low
        if ok and high is not None:
            ok = number <= high if high_inclusive else number < high
    if not ok:
        parts = []
        if low is not None:
            parts.append(f"{'>=' if low_inclusive else '>'} {low:g}")
        if high is not None:
            parts.append(f"{'<=' if high_inclusive else '<'} {high:g}")
        rule = " and ".join(parts) if parts else ""
        raise ConfigurationError(MSG_FLOAT.format(name=name, owner=owner, rule=rule, value=value))
    return float(value)  # type: ignore[arg-type]


def check_choice(value: object, *, name: str, owner: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise ConfigurationError."""
    if not isinstance(value, str) or value not in choices:
        raise ConfigurationError(
            MSG_CHOICE.format(
                name=name, owner=owner, choices=", ".join(map(repr, choices)), value=value
            )
        )
    return value


def check_bool(value: object, *, name: str, owner: str) -> bool:
    """Return ``value`` if it is a bool, else raise ConfigurationError."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigurationError(MSG_BOOL.format(name=name, owner=owner, value=value))
    return bool(value)


def check_str(value: object, *, name: str, owner: str) -> str:
    """Return ``value`` if it is a non-empty str, else raise ConfigurationError."""
    if not isinstance(value, str) or not value:
        raise ConfigurationError(MSG_STR.format(name=name, owner=owner, value=value))
    return value


def check_client_id(value: object, *, owner: str) -> str:
    """Return ``value`` if it is a non-empty str, else raise DataError."""
    if not isinstance(value, str) or not value:
        raise DataError(MSG_CLIENT_ID.format(owner=owner, value=value))
    return value


def check_outputs(
    outputs: object, *, owner: str, probabilities: bool, n_inputs: int | None = None
) -> torch.Tensor:
    """Check a batch of victim outputs: a finite 2-D float tensor, in [0, 1] if probabilities."""
    if not isinstance(outputs, torch.Tensor):
        raise DataError(MSG_OUTPUTS_SHAPE.format(owner=owner, what=type(outputs).__name__))
    if outputs.dim() != 2 or not outputs.is_floating_point() or outputs.shape[0] == 0:
        what = f"shape {tuple(outputs.shape)} and dtype {outputs.dtype}"
        raise DataError(MSG_OUTPUTS_SHAPE.format(owner=owner, what=what))
    finite = torch.isfinite(outputs).all(dim=1)
    if not bool(finite.all()):
        index = int(torch.argmin(finite.to(torch.uint8)))
        raise DataError(MSG_OUTPUTS_NON_FINITE.format(owner=owner, index=index))
    if probabilities:
        inside = ((outputs >= 0) & (outputs <= 1)).all(dim=1)
        if not bool(inside.all()):
            index = int(torch.argmin(inside.to(torch.uint8)))
            row = outputs[index]
            bad = row[(row < 0) | (row > 1)][0]
            raise DataError(
                MSG_OUTPUTS_NOT_PROBABILITIES.format(owner=owner, index=index, value=float(bad))
            )
    if n_inputs is not None and n_inputs != outputs.shape[0]:
        raise DataError(
            MSG_INPUTS_LENGTH.format(owner=owner, n_inputs=n_inputs, n_outputs=outputs.shape[0])
        )
    return outputs

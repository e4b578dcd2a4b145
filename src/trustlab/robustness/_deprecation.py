"""Deprecation helpers: old names keep working for two releases, with a FutureWarning."""

from __future__ import annotations

import warnings
from typing import Any

MSG_RENAMED = (
    "The {old!r} argument of {owner} is deprecated in 0.2 and will be removed in 0.4; "
    "pass {new!r} instead."
)
MSG_MISSING = "{owner} needs the {new!r} argument."


def warn_deprecated(message: str) -> None:
    """Warn with a :class:`FutureWarning` that points at the caller's caller."""
    warnings.warn(message, FutureWarning, stacklevel=3)


def renamed(new_value: Any, old_value: Any, *, new: str, old: str, owner: str) -> Any:
    """The value of an argument renamed from ``old`` to ``new``: the new one, or the old one
    with a FutureWarning. TypeError if neither (or both) is given."""
    if old_value is None:
        if new_value is None:
            raise TypeError(MSG_MISSING.format(owner=owner, new=new))
        return new_value
    if new_value is not None:
        raise TypeError(MSG_RENAMED.format(old=old, owner=owner, new=new))
    warnings.warn(MSG_RENAMED.format(old=old, owner=owner, new=new), FutureWarning, stacklevel=3)
    return old_value

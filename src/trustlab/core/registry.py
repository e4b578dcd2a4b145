"""Name-keyed registries that refuse duplicates and explain unknown names."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from trustlab.core.errors import ConfigurationError, DuplicateNameError, UnknownNameError

T = TypeVar("T")

MSG_DUPLICATE = "{kind} {name!r} is already registered; pick another name or unregister it first."
MSG_UNKNOWN = "Unknown {kind} {name!r}. Known {kind}s: {known}."
MSG_OPTIONS_NOT_MAPPING = "The options of {kind} {name!r} must be a mapping of names to values."
MSG_UNKNOWN_OPTIONS = (
    "Unknown option(s) {unknown} for {kind} {name!r}. Accepted options: {accepted}."
)
MSG_MISSING_OPTIONS = "The {kind} {name!r} needs the option(s) {missing}."


class Registry(Generic[T]):
    """A mapping from names to objects of one kind (architectures, data sets, task kinds, ...).

    Parameters
    ----------
    kind : str
        What the registry holds, used in error messages ("architecture", "task kind").

    Examples
    --------
    >>> reg: Registry[int] = Registry("number")
    >>> reg.add("one", 1)
    >>> reg.get("one")
    1
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def add(self, name: str, item: T) -> None:
        if name in self._items:
            raise DuplicateNameError(MSG_DUPLICATE.format(kind=self.kind, name=name))
        self._items[name] = item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def decorator(item: T) -> T:
            self.add(name, item)
            return item

        return decorator

    def remove(self, name: str) -> None:
        self.get(name)
        del self._items[name]

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            known = ", ".join(sorted(self._items)) or "none"
            raise UnknownNameError(
                MSG_UNKNOWN.format(kind=self.kind, name=name, known=known)
            ) from None

    def build(self, name: str, options: Mapping[str, Any] | None = None) -> Any:
        """Call the member ``name`` (a class or factory) with ``options`` as keyword arguments.

        This is how a task's YAML spec turns ``{name: pgd, options: {eps: 0.03}}`` into an
        object. Unknown option names raise :class:`ConfigurationError` listing the accepted
        ones; the member's own parameter checks report bad values.
        """
        factory = self.get(name)
        if not callable(factory):
            raise ConfigurationError(f"The {self.kind} {name!r} cannot be built from options.")
        if options is None:
            options = {}
        if not isinstance(options, Mapping):
            raise ConfigurationError(MSG_OPTIONS_NOT_MAPPING.format(kind=self.kind, name=name))
        try:
            signature = inspect.signature(factory)
        except (TypeError, ValueError):  # a builtin without a signature
            return factory(**options)
        parameters = list(signature.parameters.values())
        named = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        accepted = [p.name for p in parameters if p.kind in named]
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
            unknown = sorted(set(options) - set(accepted))
            if unknown:
                raise ConfigurationError(
                    MSG_UNKNOWN_OPTIONS.format(
                        unknown=", ".join(map(repr, unknown)),
                        kind=self.kind,
                        name=name,
                        accepted=", ".join(map(repr, accepted)) or "none",
                    )
                )
        missing = [
            p.name
            for p in parameters
            if p.kind in named and p.default is p.empty and p.name not in options
        ]
        if missing:
            raise ConfigurationError(
                MSG_MISSING_OPTIONS.format(
                    kind=self.kind, name=name, missing=", ".join(map(repr, missing))
                )
            )
        return factory(**options)

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

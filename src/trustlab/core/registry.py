"""Name-keyed registries that refuse duplicates and explain unknown names."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from trustlab.core.errors import DuplicateNameError, UnknownNameError

T = TypeVar("T")

MSG_DUPLICATE = "{kind} {name!r} is already registered; pick another name or unregister it first."
MSG_UNKNOWN = "Unknown {kind} {name!r}. Known {kind}s: {known}."


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

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)

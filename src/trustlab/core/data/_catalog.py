"""The registry of data set loaders and its front door, :func:`load_dataset`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from trustlab.core.data.records import Dataset
from trustlab.core.errors import ConfigurationError
from trustlab.core.registry import Registry

Loader = Callable[..., Dataset]

DATASETS: Registry[Loader] = Registry("data set")
"""Loaders by name. Each loader takes keyword-only options and returns a data set record."""

MSG_UNKNOWN_OPTIONS = (
    "Data set {name!r} does not take the option(s) {bad}. Its options are: {accepted}."
)
MSG_MISSING_OPTIONS = "Data set {name!r} needs the option(s) {missing}."


def list_datasets() -> list[str]:
    """Names of the registered data sets, sorted.

    Examples
    --------
    >>> "adult" in list_datasets()
    True
    """
    return DATASETS.names()


def load_dataset(name: str, **options: Any) -> Dataset:
    """Load a registered data set by name.

    This is the one place in :mod:`trustlab.core.data` that takes ``**options``: a spec file or
    a request names a data set and its options as data, and this function checks the options
    against the loader's keyword-only signature before calling it. In code, prefer calling the
    loader itself (:func:`load_adult`, ...), whose signature a type checker can see.

    Parameters
    ----------
    name : str
        A name from :func:`list_datasets` ("adult", "cifar10", "compas", "digits", "german").
    **options
        The loader's keyword arguments, e.g. ``split="test"`` or ``root="/data/cifar"``.

    Returns
    -------
    ImageDataset or TabularDataset

    Raises
    ------
    UnknownNameError
        If ``name`` is not registered; the message lists the known names.
    ConfigurationError
        If an option is unknown to the loader or a required one is missing.

    Examples
    --------
    >>> ds = load_dataset("german", split="train")
    >>> len(ds)
    700
    """
    loader = DATASETS.get(name)
    params = inspect.signature(loader).parameters
    unknown = sorted(set(options) - set(params))
    if unknown:
        raise ConfigurationError(
            MSG_UNKNOWN_OPTIONS.format(name=name, bad=unknown, accepted=list(params) or "none")
        )
    missing = [p.name for p in params.values() if p.default is p.empty and p.name not in options]
    if missing:
        raise ConfigurationError(MSG_MISSING_OPTIONS.format(name=name, missing=missing))
    return loader(**options)

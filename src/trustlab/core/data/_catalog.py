"""The registry of data set loaders and its front door, :func:`load_dataset`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from trustlab.core.data.records import Dataset
from trustlab.core.registry import Registry

Loader = Callable[..., Dataset]

DATASETS: Registry[Loader] = Registry("data set")
"""Loaders by name. Each loader takes keyword-only options and returns a data set record."""


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
    dataset: Dataset = DATASETS.build(name, options)
    return dataset

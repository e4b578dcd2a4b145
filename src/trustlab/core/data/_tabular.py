"""Helpers shared by the tabular loaders: vendored files, parameter checks and encoding."""

from __future__ import annotations

import gzip
from collections.abc import Collection, Mapping, Sequence
from importlib import resources

import numpy as np

from trustlab.core.errors import ConfigurationError, DataError

AGE_THRESHOLD = 25
"""Rows with ``age >= AGE_THRESHOLD`` are in group 1 ("25+"), younger rows in group 0."""
AGE_GROUP_LABELS = ["<25", "25+"]
SEX_LABELS = ["Female", "Male"]

MSG_VENDORED_MISSING = (
    "The vendored data file {filename!r} is missing from trustlab's package data;"
    " reinstall trustlab."
)
MSG_SPLIT = "The 'split' parameter of {loader} must be one of {allowed}. Got {got!r} instead."
MSG_SENSITIVE = (
    "The 'sensitive' parameter of {loader} may only name {allowed}. Got {got!r} instead."
)
MSG_SENSITIVE_DUPLICATE = "The 'sensitive' parameter of {loader} names {got!r} twice."
MSG_UNKNOWN_CATEGORY = (
    "{dataset}: column {column!r} holds {value!r}, which is not one of its known values {known}."
)
MSG_BAD_NUMBER = "{dataset}: column {column!r} holds {value!r}, which is not a number."


def read_vendored_text(filename: str) -> str:
    """Decompress and decode one gzip file of ``trustlab/core/data/_vendor``."""
    resource = resources.files("trustlab.core.data") / "_vendor" / filename
    try:
        raw = resource.read_bytes()
    except FileNotFoundError:
        raise DataError(MSG_VENDORED_MISSING.format(filename=filename)) from None
    return gzip.decompress(raw).decode("utf-8")


def check_split(loader: str, split: str, allowed: Sequence[str]) -> None:
    if split not in allowed:
        raise ConfigurationError(MSG_SPLIT.format(loader=loader, allowed=list(allowed), got=split))


def check_sensitive(
    loader: str, sensitive: Sequence[str] | str, allowed: Sequence[str]
) -> tuple[str, ...]:
    """Validate the requested sensitive attributes; a single string means one attribute."""
    names = (sensitive,) if isinstance(sensitive, str) else tuple(sensitive)
    for name in names:
        if name not in allowed:
            raise ConfigurationError(
                MSG_SENSITIVE.format(loader=loader, allowed=list(allowed), got=name)
            )
    for name in names:
        if names.count(name) > 1:
            raise ConfigurationError(MSG_SENSITIVE_DUPLICATE.format(loader=loader, got=name))
    return names


def codes_of(
    values: Sequence[str], categories: Sequence[str], *, dataset: str, column: str
) -> np.ndarray:
    """Map every value to its position in ``categories`` (int64); unknown values are errors."""
    lookup = {category: code for code, category in enumerate(categories)}
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        try:
            out[i] = lookup[value]
        except KeyError:
            raise DataError(
                MSG_UNKNOWN_CATEGORY.format(
                    dataset=dataset, column=column, value=value, known=list(categories)
                )
            ) from None
    return out


def numbers_of(values: Sequence[str], *, dataset: str, column: str) -> np.ndarray:
    """Parse every value as a float64."""
    try:
        return np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        bad = next(v for v in values if not _is_number(v))
        raise DataError(MSG_BAD_NUMBER.format(dataset=dataset, column=column, value=bad)) from None


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def age_groups(age: np.ndarray) -> np.ndarray:
    """Binary age group: 0 for ``age < 25``, 1 for ``age >= 25`` (int64)."""
    return (age >= AGE_THRESHOLD).astype(np.int64)


class FeatureBuilder:
    """Collects standardized numeric columns and one-hot categorical columns, in call order.

    Parameters
    ----------
    stats_rows : np.ndarray of int64
        The rows whose mean and standard deviation standardize every numeric column (the train
        part), so that train and test are scaled the same way.
    """

    def __init__(self, stats_rows: np.ndarray) -> None:
        self.stats_rows = stats_rows
        self._blocks: list[np.ndarray] = []
        self._names: list[str] = []

    def numeric(self, name: str, values: np.ndarray) -> None:
        """Add ``(values - mean) / std`` with mean and (population) std of the stats rows."""
        ref = values[self.stats_rows]
        mean = float(ref.mean())
        std = float(ref.std())
        self._blocks.append(((values - mean) / (std if std > 0 else 1.0))[:, None])
        self._names.append(name)

    def categorical(self, name: str, codes: np.ndarray, categories: Sequence[str]) -> None:
        """Add one 0/1 column ``"name=category"`` per category, in the order given."""
        self._blocks.append(np.eye(len(categories), dtype=np.float64)[codes])
        self._names.extend(f"{name}={category}" for category in categories)

    def build(self) -> tuple[np.ndarray, list[str]]:
        """The float32 feature matrix, shape (N, D), and its D column names."""
        return np.hstack(self._blocks).astype(np.float32), list(self._names)


def encode_columns(
    columns: Mapping[str, Sequence[str]],
    schema: Mapping[str, Sequence[str] | None],
    *,
    dataset: str,
    dropped: Collection[str],
    stats_rows: np.ndarray,
) -> tuple[np.ndarray, list[str], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Encode raw string columns by a schema: numbers standardised, categories one-hot.

    ``schema`` maps each column to its categories (``None`` for a number). Every column is
    parsed (so sensitive attributes can be derived from it) but ``dropped`` ones are left out
    of the features. Returns the features, their names, and the parsed numbers and codes.
    """
    builder = FeatureBuilder(stats_rows=stats_rows)
    numbers: dict[str, np.ndarray] = {}
    codes: dict[str, np.ndarray] = {}
    for column, categories in schema.items():
        if categories is None:
            numbers[column] = numbers_of(columns[column], dataset=dataset, column=column)
            if column not in dropped:
                builder.numeric(column, numbers[column])
        else:
            codes[column] = codes_of(columns[column], categories, dataset=dataset, column=column)
            if column not in dropped:
                builder.categorical(column, codes[column], categories)
    x, feature_names = builder.build()
    return x, feature_names, numbers, codes

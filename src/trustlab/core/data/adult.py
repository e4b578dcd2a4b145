"""UCI Adult (Census Income, 1994): predict whether a person earns more than $50K a year.

Source: Dua & Graff, UCI Machine Learning Repository, CC BY 4.0 (vendored, see
``_vendor/ATTRIBUTION.md``). The original train/test split is kept: ``adult.data`` (32,561 rows)
and ``adult.test`` (16,281 rows; its first line is a comment and its labels end in a '.').

Rows
----
Fields are stripped of whitespace. Every row with a '?' (unknown) in any column is dropped, as
in the UCI documentation: 30,162 train rows and 15,060 test rows are kept (45,222 of 48,842).
Label 1 is income ``>50K``, label 0 is ``<=50K`` (24.9% positive in train, 24.6% in test).

Encoding of ``x`` (float32), in the file's column order
-------------------------------------------------------
* The six continuous columns (age, fnlwgt, education-num, capital-gain, capital-loss,
  hours-per-week) are standardized, ``(v - mean) / std``, with the mean and population std of the
  kept TRAIN rows; the test split uses the same train statistics.
* The categorical columns (workclass, marital-status, occupation, relationship, race, sex,
  native-country) are one-hot encoded with one column ``"column=value"`` per value listed in the
  schema (``adult.names``), in the schema's order. Train and test therefore have the same 89
  columns in the same order, even where a value never occurs in one split.
* ``education`` is dropped: it is the same information as ``education-num`` (one number per
  education level), so keeping both would duplicate it.
* ``include_sensitive_in_features=True`` (the default) keeps the sensitive attributes among the
  features. With ``False``, the columns of the attributes named in ``sensitive`` are removed
  (``sex=*`` for "sex", ``race=*`` for "race", ``age`` for "age"). Proxies stay: for example
  ``relationship=Husband`` / ``relationship=Wife`` still reveal sex.

Sensitive attributes (int64 codes)
----------------------------------
* ``sex``: 0 Female, 1 Male.
* ``race``: the schema's order, 0 White, 1 Asian-Pac-Islander, 2 Amer-Indian-Eskimo, 3 Other,
  4 Black.
* ``age``: 0 "<25" (age < 25), 1 "25+" (age >= 25).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from trustlab.core.data._catalog import DATASETS
from trustlab.core.data._tabular import (
    AGE_GROUP_LABELS,
    age_groups,
    check_sensitive,
    check_split,
    codes_of,
    encode_columns,
    read_vendored_text,
)
from trustlab.core.data.records import TabularDataset
from trustlab.core.errors import DataError

#: Columns of adult.data / adult.test in file order; ``None`` marks a continuous column, a tuple
#: the categorical values in the order of the schema file ``adult.names``.
ADULT_SCHEMA: dict[str, tuple[str, ...] | None] = {
    "age": None,
    "workclass": (
        "Private",
        "Self-emp-not-inc",
        "Self-emp-inc",
        "Federal-gov",
        "Local-gov",
        "State-gov",
        "Without-pay",
        "Never-worked",
    ),
    "fnlwgt": None,
    "education": (
        "Bachelors",
        "Some-college",
        "11th",
        "HS-grad",
        "Prof-school",
        "Assoc-acdm",
        "Assoc-voc",
        "9th",
        "7th-8th",
        "12th",
        "Masters",
        "1st-4th",
        "10th",
        "Doctorate",
        "5th-6th",
        "Preschool",
    ),
    "education-num": None,
    "marital-status": (
        "Married-civ-spouse",
        "Divorced",
        "Never-married",
        "Separated",
        "Widowed",
        "Married-spouse-absent",
        "Married-AF-spouse",
    ),
    "occupation": (
        "Tech-support",
        "Craft-repair",
        "Other-service",
        "Sales",
        "Exec-managerial",
        "Prof-specialty",
        "Handlers-cleaners",
        "Machine-op-inspct",
        "Adm-clerical",
        "Farming-fishing",
        "Transport-moving",
        "Priv-house-serv",
        "Protective-serv",
        "Armed-Forces",
    ),
    "relationship": (
        "Wife",
        "Own-child",
        "Husband",
        "Not-in-family",
        "Other-relative",
        "Unmarried",
    ),
    "race": ("White", "Asian-Pac-Islander", "Amer-Indian-Eskimo", "Other", "Black"),
    "sex": ("Female", "Male"),
    "capital-gain": None,
    "capital-loss": None,
    "hours-per-week": None,
    "native-country": (
        "United-States",
        "Cambodia",
        "England",
        "Puerto-Rico",
        "Canada",
        "Germany",
        "Outlying-US(Guam-USVI-etc)",
        "India",
        "Japan",
        "Greece",
        "South",
        "China",
        "Cuba",
        "Iran",
        "Honduras",
        "Philippines",
        "Italy",
        "Poland",
        "Jamaica",
        "Vietnam",
        "Mexico",
        "Portugal",
        "Ireland",
        "France",
        "Dominican-Republic",
        "Laos",
        "Ecuador",
        "Taiwan",
        "Haiti",
        "Columbia",
        "Hungary",
        "Guatemala",
        "Nicaragua",
        "Scotland",
        "Thailand",
        "Yugoslavia",
        "El-Salvador",
        "Trinadad&Tobago",
        "Peru",
        "Hong",
        "Holand-Netherlands",
    ),
}
ADULT_LABELS = ["<=50K", ">50K"]
ADULT_DROPPED = ("education",)
ADULT_SPLITS = ("train", "test")
ADULT_SENSITIVE = ("sex", "race", "age")
ADULT_FILES = {"train": "adult.data.gz", "test": "adult.test.gz"}

MSG_ROW_WIDTH = "adult: line {line} of {filename} has {got} fields; expected {want}."

_COLUMNS = [*ADULT_SCHEMA, "income"]
_FEATURE_OF_SENSITIVE = {"sex": "sex", "race": "race", "age": "age"}


@functools.cache
def _read_rows(split: str) -> tuple[tuple[tuple[str, ...], ...], int]:
    """The rows of one split without '?' (fields stripped, label without '.'), and rows read."""
    filename = ADULT_FILES[split]
    kept: list[tuple[str, ...]] = []
    read = 0
    for number, line in enumerate(read_vendored_text(filename).splitlines(), start=1):
        if not line.strip() or line.startswith("|"):
            continue
        fields = tuple(field.strip() for field in line.split(","))
        if len(fields) != len(_COLUMNS):
            raise DataError(
                MSG_ROW_WIDTH.format(line=number, filename=filename, got=len(fields), want=15)
            )
        read += 1
        if "?" in fields:
            continue
        kept.append((*fields[:-1], fields[-1].rstrip(".")))
    return tuple(kept), read


@DATASETS.register("adult")
def load_adult(
    *,
    split: str = "train",
    sensitive: Sequence[str] = ("sex", "race"),
    include_sensitive_in_features: bool = True,
) -> TabularDataset:
    """Load UCI Adult, encoded as described in the module docstring.

    Parameters
    ----------
    split : {"train", "test"}
        The original UCI split: 30,162 train rows or 15,060 test rows after dropping rows with
        '?'.
    sensitive : sequence of {"sex", "race", "age"}
        Attributes returned in ``sensitive`` (codes) and ``sensitive_labels``.
    include_sensitive_in_features : bool
        Keep the columns of the ``sensitive`` attributes in ``x`` (default) or remove them.

    Returns
    -------
    TabularDataset
        ``x`` float32 (N, 89) with the default options, ``y`` 1 for ``>50K``.

    Raises
    ------
    ConfigurationError
        If ``split`` or a ``sensitive`` name is not one of the allowed values.

    Examples
    --------
    >>> ds = load_adult(split="test", sensitive=("sex",))
    >>> len(ds), ds.sensitive_labels["sex"]
    (15060, ['Female', 'Male'])
    """
    check_split("load_adult", split, ADULT_SPLITS)
    names = check_sensitive("load_adult", sensitive, ADULT_SENSITIVE)
    train_rows, _ = _read_rows("train")
    rows = train_rows if split == "train" else train_rows + _read_rows("test")[0]
    n_train = len(train_rows)
    columns = {name: [row[i] for row in rows] for i, name in enumerate(_COLUMNS)}

    dropped = set(ADULT_DROPPED)
    if not include_sensitive_in_features:
        dropped.update(_FEATURE_OF_SENSITIVE[name] for name in names)
    x, feature_names, numbers, codes = encode_columns(
        columns, ADULT_SCHEMA, dataset="adult", dropped=dropped, stats_rows=np.arange(n_train)
    )
    y = codes_of(columns["income"], ADULT_LABELS, dataset="adult", column="income")

    groups = {
        "sex": (codes["sex"], list(ADULT_SCHEMA["sex"] or ())),
        "race": (codes["race"], list(ADULT_SCHEMA["race"] or ())),
        "age": (age_groups(numbers["age"]), list(AGE_GROUP_LABELS)),
    }
    part = slice(0, n_train) if split == "train" else slice(n_train, None)
    return TabularDataset(
        name="adult",
        x=np.ascontiguousarray(x[part]),
        y=y[part].copy(),
        sensitive={name: groups[name][0][part].copy() for name in names},
        sensitive_labels={name: groups[name][1] for name in names},
        feature_names=feature_names,
        label_names=list(ADULT_LABELS),
        split=split,
    )

"""UCI Statlog German Credit: predict whether a loan applicant is a good or a bad credit risk.

Source: Hofmann, UCI Machine Learning Repository, CC BY 4.0 (vendored, see
``_vendor/ATTRIBUTION.md``). ``german.data`` has 1,000 space-separated rows of 20 attributes
(13 coded ``A11`` .. ``A202``, 7 numbers) and a label; no values are missing.

Label: 1 = good credit (the file's 1, 700 rows), 0 = bad credit (the file's 2, 300 rows).

Splits: the data has no official split. ``train`` and ``test`` are a fixed 70/30 split,
stratified by label, from :func:`~trustlab.core.data.split.train_test_split_indices` with
``test_fraction=0.3, seed=0`` (700 train rows, 300 test rows, 70% good in each); ``all`` is every
row. Rows keep the file's order within each split.

Encoding of ``x`` (float32), in the file's attribute order
----------------------------------------------------------
* The 7 numeric attributes (duration, credit_amount, installment_rate, residence_since, age,
  existing_credits, num_dependents) are standardized with the mean and population std of the
  70% TRAIN part, for every split (``all`` included).
* The 13 coded attributes are one-hot encoded, one column ``"attribute=code"`` per code of the
  UCI documentation (e.g. ``checking_status=A11``), in code order, so every split has the same
  63 columns (7 numbers and 56 codes). See the UCI page of the data set for what each code means.
* ``include_sensitive_in_features=True`` (default) keeps the sensitive attributes in ``x``; with
  ``False`` the attribute columns behind each requested one are removed (``personal_status_sex=*``
  for "sex", ``age`` for "age", ``foreign_worker=*`` for "foreign_worker").

Sensitive attributes (int64 codes)
----------------------------------
* ``sex``, from attribute 9 (personal status and sex): 0 Female (A92 female
  divorced/separated/married, A95 female single), 1 Male (A91 male divorced/separated, A93 male
  single, A94 male married/widowed).
* ``age``, from attribute 13: 0 "<25" (age < 25), 1 "25+" (age >= 25).
* ``foreign_worker``, from attribute 20: 0 "no" (A202), 1 "yes" (A201).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from trustlab.core.data._catalog import DATASETS
from trustlab.core.data._tabular import (
    AGE_GROUP_LABELS,
    SEX_LABELS,
    age_groups,
    check_sensitive,
    check_split,
    codes_of,
    encode_columns,
    read_vendored_text,
)
from trustlab.core.data.records import TabularDataset
from trustlab.core.data.split import train_test_split_indices
from trustlab.core.errors import DataError


def _codes(prefix: str, first: int, last: int) -> tuple[str, ...]:
    return tuple(f"{prefix}{k}" for k in range(first, last + 1))


#: The 20 attributes of german.data in file order; ``None`` marks a number, a tuple the codes.
GERMAN_SCHEMA: dict[str, tuple[str, ...] | None] = {
    "checking_status": _codes("A1", 1, 4),
    "duration": None,
    "credit_history": _codes("A3", 0, 4),
    "purpose": (*_codes("A4", 0, 9), "A410"),
    "credit_amount": None,
    "savings": _codes("A6", 1, 5),
    "employment_since": _codes("A7", 1, 5),
    "installment_rate": None,
    "personal_status_sex": _codes("A9", 1, 5),
    "other_debtors": _codes("A10", 1, 3),
    "residence_since": None,
    "property": _codes("A12", 1, 4),
    "age": None,
    "other_installment_plans": _codes("A14", 1, 3),
    "housing": _codes("A15", 1, 3),
    "existing_credits": None,
    "job": _codes("A17", 1, 4),
    "num_dependents": None,
    "telephone": _codes("A19", 1, 2),
    "foreign_worker": _codes("A20", 1, 2),
}
GERMAN_LABELS = ["bad", "good"]
GERMAN_SPLITS = ("all", "train", "test")
GERMAN_SENSITIVE = ("sex", "age", "foreign_worker")
GERMAN_TEST_FRACTION = 0.3
GERMAN_SPLIT_SEED = 0
GERMAN_FEMALE_CODES = ("A92", "A95")
GERMAN_MALE_CODES = ("A91", "A93", "A94")

MSG_ROW_WIDTH = "german: line {line} of german.data has {got} fields; expected {want}."

_FEATURE_OF_SENSITIVE = {
    "sex": "personal_status_sex",
    "age": "age",
    "foreign_worker": "foreign_worker",
}


@functools.cache
def _read_rows() -> tuple[tuple[str, ...], ...]:
    rows = []
    want = len(GERMAN_SCHEMA) + 1
    for number, line in enumerate(read_vendored_text("german.data.gz").splitlines(), start=1):
        if not line.strip():
            continue
        fields = tuple(line.split())
        if len(fields) != want:
            raise DataError(MSG_ROW_WIDTH.format(line=number, got=len(fields), want=want))
        rows.append(fields)
    return tuple(rows)


@DATASETS.register("german")
def load_german(
    *,
    split: str = "all",
    sensitive: Sequence[str] = ("sex", "age"),
    include_sensitive_in_features: bool = True,
) -> TabularDataset:
    """Load UCI German Credit, encoded as described in the module docstring.

    Parameters
    ----------
    split : {"all", "train", "test"}
        All 1,000 rows, or the fixed stratified 70/30 split (seed 0).
    sensitive : sequence of {"sex", "age", "foreign_worker"}
        Attributes returned in ``sensitive`` (codes) and ``sensitive_labels``.
    include_sensitive_in_features : bool
        Keep the columns of the ``sensitive`` attributes in ``x`` (default) or remove them.

    Returns
    -------
    TabularDataset
        ``x`` float32 (N, 63) with the default options, ``y`` 1 for good credit.

    Raises
    ------
    ConfigurationError
        If ``split`` or a ``sensitive`` name is not one of the allowed values.

    Examples
    --------
    >>> ds = load_german(split="test")
    >>> len(ds), ds.label_names
    (300, ['bad', 'good'])
    """
    check_split("load_german", split, GERMAN_SPLITS)
    names = check_sensitive("load_german", sensitive, GERMAN_SENSITIVE)
    rows = _read_rows()
    columns = {name: [row[i] for row in rows] for i, name in enumerate(GERMAN_SCHEMA)}
    label_column = [row[-1] for row in rows]
    y = 1 - codes_of(label_column, ("1", "2"), dataset="german", column="label")
    train, test = train_test_split_indices(
        len(rows), test_fraction=GERMAN_TEST_FRACTION, seed=GERMAN_SPLIT_SEED, stratify=y
    )

    dropped = set() if include_sensitive_in_features else {_FEATURE_OF_SENSITIVE[n] for n in names}
    x, feature_names, numbers, codes = encode_columns(
        columns, GERMAN_SCHEMA, dataset="german", dropped=dropped, stats_rows=train
    )

    status = np.array(columns["personal_status_sex"])
    groups = {
        "sex": (np.isin(status, GERMAN_MALE_CODES).astype(np.int64), list(SEX_LABELS)),
        "age": (age_groups(numbers["age"]), list(AGE_GROUP_LABELS)),
        "foreign_worker": ((codes["foreign_worker"] == 0).astype(np.int64), ["no", "yes"]),
    }
    rows_of = {"all": np.arange(len(rows)), "train": train, "test": test}[split]
    return TabularDataset(
        name="german",
        x=x[rows_of],
        y=y[rows_of],
        sensitive={name: groups[name][0][rows_of] for name in names},
        sensitive_labels={name: groups[name][1] for name in names},
        feature_names=feature_names,
        label_names=list(GERMAN_LABELS),
        split=split,
    )

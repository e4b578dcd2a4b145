"""ProPublica COMPAS: predict two-year recidivism of people screened in Broward County, Florida.

Source: ProPublica "Machine Bias" analysis data (2016), attribute ProPublica (vendored, see
``_vendor/ATTRIBUTION.md``). The two-year file (``compas-scores-two-years.csv``, 7,214 rows)
with the columns that identify people removed.

Rows
----
ProPublica's own filter is applied, keeping a row only if ``days_b_screening_arrest`` is present
and within [-30, 30] (the charge is the one the screening was about), ``is_recid != -1``,
``c_charge_degree != "O"`` (ordinary traffic offences) and ``score_text != "N/A"``. This keeps
6,172 rows, ProPublica's published count. Label: ``two_year_recid`` (1 = charged with a new
offence within two years, 45.5% of rows).

Splits: a fixed 70/30 split stratified by label, from
:func:`~trustlab.core.data.split.train_test_split_indices` with ``test_fraction=0.3, seed=0``
(4,320 train rows, 1,852 test rows); ``all`` is every kept row. Rows keep the file's order.

Encoding of ``x`` (float32)
---------------------------
* Numbers, standardized with the mean and population std of the TRAIN part for every split:
  ``age``, ``priors_count``, ``juv_fel_count``, ``juv_misd_count``, ``juv_other_count``.
* One-hot, one column ``"column=value"`` per value in a fixed order: ``c_charge_degree`` (F, M),
  ``sex`` (Female, Male), ``race`` (African-American, Asian, Caucasian, Hispanic,
  Native American, Other) and ``age_cat`` (Less than 25, 25 - 45, Greater than 45). 18 columns.
* ``decile_score`` and ``score_text`` are NOT features: they are the output of the COMPAS tool
  itself, whose fairness these data are used to study; a model fed them would learn COMPAS's
  score rather than recidivism. The other columns (dates, offence descriptions, later charges,
  ``is_recid`` and violent-recidivism fields) are left out as free text or label leakage.
* ``include_sensitive_in_features=True`` (default) keeps the sensitive attributes in ``x``; with
  ``False`` the columns behind each requested one are removed (``race=*`` for "race", ``sex=*``
  for "sex", ``age`` and ``age_cat=*`` for "age").

Sensitive attributes (int64 codes)
----------------------------------
* ``race``: 0 African-American, 1 Asian, 2 Caucasian, 3 Hispanic, 4 Native American, 5 Other.
* ``sex``: 0 Female, 1 Male.
* ``age``: 0 "<25" (age < 25), 1 "25+" (age >= 25); the same rule as Adult and German.
"""

from __future__ import annotations

import csv
import functools
import io
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

COMPAS_FILE = "compas-scores-two-years.csv.gz"
#: Features in the order of the columns of ``x``; ``None`` marks a number, a tuple the values.
COMPAS_FEATURES: dict[str, tuple[str, ...] | None] = {
    "age": None,
    "priors_count": None,
    "juv_fel_count": None,
    "juv_misd_count": None,
    "juv_other_count": None,
    "c_charge_degree": ("F", "M"),
    "sex": tuple(SEX_LABELS),
    "race": ("African-American", "Asian", "Caucasian", "Hispanic", "Native American", "Other"),
    "age_cat": ("Less than 25", "25 - 45", "Greater than 45"),
}
COMPAS_LABEL = "two_year_recid"
COMPAS_LABELS = ["no_recid", "recid"]
COMPAS_SPLITS = ("all", "train", "test")
COMPAS_SENSITIVE = ("race", "sex", "age")
COMPAS_TEST_FRACTION = 0.3
COMPAS_SPLIT_SEED = 0
COMPAS_MAX_SCREENING_GAP_DAYS = 30

MSG_MISSING_COLUMNS = "compas: {filename} lacks the column(s) {missing}."

_FILTER_COLUMNS = ("days_b_screening_arrest", "is_recid", "c_charge_degree", "score_text")
_FEATURES_OF_SENSITIVE = {"race": ("race",), "sex": ("sex",), "age": ("age", "age_cat")}


def _keep(row: dict[str, str]) -> bool:
    """ProPublica's filter of the two-year file."""
    gap = row["days_b_screening_arrest"].strip()
    if not gap or abs(float(gap)) > COMPAS_MAX_SCREENING_GAP_DAYS:
        return False
    return row["is_recid"] != "-1" and row["c_charge_degree"] != "O" and row["score_text"] != "N/A"


@functools.cache
def _read_columns() -> dict[str, tuple[str, ...]]:
    """The needed columns of the rows that pass ProPublica's filter."""
    reader = csv.DictReader(io.StringIO(read_vendored_text(COMPAS_FILE), newline=""))
    needed = (*COMPAS_FEATURES, COMPAS_LABEL, *_FILTER_COLUMNS)
    missing = [c for c in needed if c not in (reader.fieldnames or ())]
    if missing:
        raise DataError(MSG_MISSING_COLUMNS.format(filename=COMPAS_FILE, missing=missing))
    kept = [row for row in reader if _keep(row)]
    return {c: tuple(row[c] for row in kept) for c in (*COMPAS_FEATURES, COMPAS_LABEL)}


@DATASETS.register("compas")
def load_compas(
    *,
    split: str = "all",
    sensitive: Sequence[str] = ("race", "sex"),
    include_sensitive_in_features: bool = True,
) -> TabularDataset:
    """Load ProPublica's COMPAS two-year data, filtered and encoded as in the module docstring.

    Parameters
    ----------
    split : {"all", "train", "test"}
        All 6,172 kept rows, or the fixed stratified 70/30 split (seed 0).
    sensitive : sequence of {"race", "sex", "age"}
        Attributes returned in ``sensitive`` (codes) and ``sensitive_labels``.
    include_sensitive_in_features : bool
        Keep the columns of the ``sensitive`` attributes in ``x`` (default) or remove them.

    Returns
    -------
    TabularDataset
        ``x`` float32 (N, 18) with the default options, ``y`` 1 for two-year recidivism.

    Raises
    ------
    ConfigurationError
        If ``split`` or a ``sensitive`` name is not one of the allowed values.

    Examples
    --------
    >>> ds = load_compas()
    >>> len(ds), ds.sensitive_labels["sex"]
    (6172, ['Female', 'Male'])
    """
    check_split("load_compas", split, COMPAS_SPLITS)
    names = check_sensitive("load_compas", sensitive, COMPAS_SENSITIVE)
    columns = _read_columns()
    y = codes_of(columns[COMPAS_LABEL], ("0", "1"), dataset="compas", column=COMPAS_LABEL)
    train, test = train_test_split_indices(
        len(y), test_fraction=COMPAS_TEST_FRACTION, seed=COMPAS_SPLIT_SEED, stratify=y
    )

    dropped: set[str] = set()
    if not include_sensitive_in_features:
        for name in names:
            dropped.update(_FEATURES_OF_SENSITIVE[name])
    x, feature_names, numbers, codes = encode_columns(
        columns, COMPAS_FEATURES, dataset="compas", dropped=dropped, stats_rows=train
    )

    groups = {
        "race": (codes["race"], list(COMPAS_FEATURES["race"] or ())),
        "sex": (codes["sex"], list(SEX_LABELS)),
        "age": (age_groups(numbers["age"]), list(AGE_GROUP_LABELS)),
    }
    rows_of = {"all": np.arange(len(y)), "train": train, "test": test}[split]
    return TabularDataset(
        name="compas",
        x=x[rows_of],
        y=y[rows_of],
        sensitive={name: groups[name][0][rows_of] for name in names},
        sensitive_labels={name: groups[name][1] for name in names},
        feature_names=feature_names,
        label_names=list(COMPAS_LABELS),
        split=split,
    )

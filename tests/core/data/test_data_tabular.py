"""The vendored tabular data sets: Adult, German Credit and COMPAS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trustlab.core.data import (
    TabularDataset,
    load_adult,
    load_compas,
    load_german,
    train_test_split_indices,
)
from trustlab.core.data.adult import ADULT_SCHEMA
from trustlab.core.errors import ConfigurationError

SHARED_ADULT_NAMES = Path("/work/shared/datasets/adult/adult.names")


@pytest.fixture(scope="module")
def adult_train() -> TabularDataset:
    return load_adult(split="train", sensitive=("sex", "race", "age"))


@pytest.fixture(scope="module")
def adult_test() -> TabularDataset:
    return load_adult(split="test", sensitive=("sex", "race", "age"))


def _column(ds: TabularDataset, name: str) -> np.ndarray:
    return ds.x[:, ds.feature_names.index(name)]


def _one_hot_block(ds: TabularDataset, prefix: str) -> np.ndarray:
    return ds.x[:, [i for i, n in enumerate(ds.feature_names) if n.startswith(prefix + "=")]]


# --- Adult -------------------------------------------------------------------------------------


def test_adult_row_counts_and_label_balance(
    adult_train: TabularDataset, adult_test: TabularDataset
) -> None:
    assert len(adult_train) == 30_162
    assert len(adult_test) == 15_060
    assert adult_train.y.mean() == pytest.approx(0.249, abs=0.001)
    assert adult_test.y.mean() == pytest.approx(0.246, abs=0.001)
    assert adult_train.label_names == ["<=50K", ">50K"]
    assert (adult_train.split, adult_test.split) == ("train", "test")


def test_adult_train_and_test_have_identical_columns(
    adult_train: TabularDataset, adult_test: TabularDataset
) -> None:
    assert adult_train.feature_names == adult_test.feature_names
    assert adult_train.x.shape[1] == adult_test.x.shape[1] == 89
    assert adult_train.x.dtype == np.float32 and adult_train.y.dtype == np.int64
    assert np.isfinite(adult_train.x).all() and np.isfinite(adult_test.x).all()
    assert "education=Bachelors" not in adult_train.feature_names
    assert "education-num" in adult_train.feature_names
    assert adult_train.feature_names.count("native-country=Holand-Netherlands") == 1


def test_adult_standardizes_with_train_statistics(
    adult_train: TabularDataset, adult_test: TabularDataset
) -> None:
    for name in ("age", "fnlwgt", "education-num", "hours-per-week"):
        assert _column(adult_train, name).mean() == pytest.approx(0.0, abs=1e-4)
        assert _column(adult_train, name).std() == pytest.approx(1.0, abs=1e-4)
    # the test split is scaled with the train statistics, so it is close to, not exactly, 0
    assert 0 < abs(float(_column(adult_test, "age").mean())) < 0.1


def test_adult_one_hot_blocks_have_exactly_one_one(adult_test: TabularDataset) -> None:
    for column, categories in ADULT_SCHEMA.items():
        if categories is None or column == "education":
            continue
        block = _one_hot_block(adult_test, column)
        assert block.shape[1] == len(categories)
        assert np.array_equal(block.sum(axis=1), np.ones(len(adult_test)))


def test_adult_sensitive_codes(adult_train: TabularDataset) -> None:
    assert adult_train.sensitive_labels["sex"] == ["Female", "Male"]
    assert adult_train.sensitive_labels["race"][0] == "White"
    assert adult_train.sensitive_labels["race"][4] == "Black"
    assert adult_train.sensitive_labels["age"] == ["<25", "25+"]
    sex = adult_train.sensitive["sex"]
    assert np.array_equal(sex, _column(adult_train, "sex=Male").astype(np.int64))
    assert np.bincount(sex).tolist() == [9_782, 20_380]
    race = adult_train.sensitive["race"]
    assert np.array_equal(race, _one_hot_block(adult_train, "race").argmax(axis=1))
    assert np.bincount(adult_train.sensitive["age"]).tolist() == [4_869, 25_293]


def test_adult_can_leave_sensitive_attributes_out_of_the_features() -> None:
    ds = load_adult(split="test", sensitive=("sex", "age"), include_sensitive_in_features=False)
    assert not any(n.startswith("sex=") for n in ds.feature_names)
    assert "age" not in ds.feature_names
    assert any(n.startswith("race=") for n in ds.feature_names)
    assert ds.x.shape[1] == 89 - 3
    assert set(ds.sensitive) == {"sex", "age"}


@pytest.mark.skipif(not SHARED_ADULT_NAMES.is_file(), reason="the shared adult.names is absent")
def test_adult_schema_matches_adult_names() -> None:
    schema: dict[str, tuple[str, ...] | None] = {}
    for line in SHARED_ADULT_NAMES.read_text().splitlines():
        if ":" in line and not line.startswith("|"):
            column, values = line.split(":", 1)
            values = values.strip().rstrip(".")
            schema[column] = (
                None if values == "continuous" else tuple(v.strip() for v in values.split(","))
            )
    assert schema == ADULT_SCHEMA


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"split": "all"}, "'split' parameter of load_adult must be one of ['train', 'test']"),
        ({"sensitive": ("religion",)}, "may only name ['sex', 'race', 'age']. Got 'religion'"),
        ({"sensitive": ("sex", "sex")}, "names 'sex' twice"),
    ],
)
def test_adult_bad_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        load_adult(**options)  # type: ignore[arg-type]
    assert message in str(err.value)


def test_single_sensitive_name_as_a_string_is_one_attribute() -> None:
    ds = load_german(sensitive="sex")
    assert list(ds.sensitive) == ["sex"]


# --- German Credit -----------------------------------------------------------------------------


def test_german_rows_labels_and_columns() -> None:
    ds = load_german()
    assert len(ds) == 1_000 and ds.split == "all"
    assert ds.y.mean() == pytest.approx(0.7)
    assert ds.label_names == ["bad", "good"]
    assert ds.x.shape == (1_000, 63)
    assert ds.x.dtype == np.float32 and np.isfinite(ds.x).all()


def test_german_sex_and_age_groups() -> None:
    ds = load_german(sensitive=("sex", "age", "foreign_worker"))
    male = np.zeros(len(ds), bool)
    for code in ("A91", "A93", "A94"):
        male |= _column(ds, f"personal_status_sex={code}") == 1
    assert np.array_equal(ds.sensitive["sex"], male.astype(np.int64))
    assert np.bincount(ds.sensitive["sex"]).tolist() == [310, 690]
    assert ds.sensitive_labels["sex"] == ["Female", "Male"]
    assert np.bincount(ds.sensitive["age"]).tolist() == [149, 851]
    assert np.bincount(ds.sensitive["foreign_worker"]).tolist() == [37, 963]


def test_german_split_is_fixed_stratified_and_scaled_on_train() -> None:
    everything, train, test = (load_german(split=s) for s in ("all", "train", "test"))
    assert (len(train), len(test)) == (700, 300)
    assert train.y.mean() == pytest.approx(0.7) and test.y.mean() == pytest.approx(0.7)
    train_rows, test_rows = train_test_split_indices(
        1_000, test_fraction=0.3, seed=0, stratify=everything.y
    )
    assert np.array_equal(everything.x[train_rows], train.x)
    assert np.array_equal(everything.x[test_rows], test.x)
    assert _column(train, "credit_amount").mean() == pytest.approx(0.0, abs=1e-5)
    assert np.array_equal(load_german(split="test").x, test.x)


def test_german_can_leave_sensitive_attributes_out_of_the_features() -> None:
    ds = load_german(include_sensitive_in_features=False)
    assert not any(n.startswith("personal_status_sex=") for n in ds.feature_names)
    assert "age" not in ds.feature_names
    assert ds.x.shape[1] == 63 - 6


# --- COMPAS ------------------------------------------------------------------------------------


def test_compas_propublica_filter_count_and_label() -> None:
    ds = load_compas()
    assert len(ds) == 6_172  # ProPublica's published count after filtering
    assert ds.y.mean() == pytest.approx(0.455, abs=0.001)
    assert ds.label_names == ["no_recid", "recid"]
    assert ds.x.shape == (6_172, 18) and np.isfinite(ds.x).all()


def test_compas_features_exclude_the_compas_score() -> None:
    names = load_compas().feature_names
    assert not any("decile" in n or "score" in n for n in names)
    assert names[:5] == [
        "age",
        "priors_count",
        "juv_fel_count",
        "juv_misd_count",
        "juv_other_count",
    ]
    assert "c_charge_degree=O" not in names


def test_compas_sensitive_codes_and_split() -> None:
    train = load_compas(split="train", sensitive=("race", "sex", "age"))
    test = load_compas(split="test", sensitive=("race",))
    assert (len(train), len(test)) == (4_320, 1_852)
    assert train.sensitive_labels["race"][0] == "African-American"
    counts = np.bincount(train.sensitive["race"], minlength=6) + np.bincount(
        test.sensitive["race"], minlength=6
    )
    assert counts.tolist() == [3_175, 31, 2_103, 509, 11, 343]
    young = train.sensitive["age"] == 0
    assert np.array_equal(young, _column(train, "age_cat=Less than 25") == 1)


def test_compas_can_leave_sensitive_attributes_out_of_the_features() -> None:
    ds = load_compas(sensitive=("age",), include_sensitive_in_features=False)
    assert "age" not in ds.feature_names
    assert not any(n.startswith("age_cat=") for n in ds.feature_names)
    assert any(n.startswith("race=") for n in ds.feature_names)


def test_adult_drops_only_rows_with_unknowns() -> None:
    from trustlab.core.data.adult import _read_rows

    for split, read, kept in (("train", 32_561, 30_162), ("test", 16_281, 15_060)):
        rows, n_read = _read_rows(split)
        assert (n_read, len(rows)) == (read, kept)
        assert not any("?" in row for row in rows)
        assert {row[-1] for row in rows} == {"<=50K", ">50K"}


def test_adult_education_is_redundant_with_education_num() -> None:
    from trustlab.core.data.adult import _read_rows

    pairs = {(row[3], row[4]) for row in _read_rows("train")[0]}
    assert len(pairs) == len({p[0] for p in pairs}) == len({p[1] for p in pairs}) == 16

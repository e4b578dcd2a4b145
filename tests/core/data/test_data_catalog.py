"""The DATASETS registry, load_dataset's option checks and the offline digits."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from trustlab.core.data import (
    DATASETS,
    ImageDataset,
    TabularDataset,
    list_datasets,
    load_dataset,
    load_digits,
)
from trustlab.core.errors import ConfigurationError, UnknownNameError

OFFLINE = [name for name in list_datasets() if name != "cifar10"]


def test_list_datasets() -> None:
    assert list_datasets() == ["adult", "cifar10", "compas", "digits", "digits-canvas", "german"]


def test_unknown_name_lists_the_known_names() -> None:
    with pytest.raises(UnknownNameError) as err:
        load_dataset("mnist")
    assert str(err.value) == (
        "Unknown data set 'mnist'. Known data sets: adult, cifar10, compas, digits, "
        "digits-canvas, german."
    )


def test_unknown_and_missing_options_are_refused() -> None:
    with pytest.raises(ConfigurationError) as err:
        load_dataset("german", splt="train")
    assert "Unknown option(s) 'splt' for data set 'german'" in str(err.value)
    assert "'split'" in str(err.value)
    with pytest.raises(ConfigurationError, match=r"needs the option\(s\) 'root'"):
        load_dataset("cifar10")


@pytest.mark.parametrize("name", list_datasets())
def test_every_loader_takes_keyword_only_options(name: str) -> None:
    params = inspect.signature(DATASETS.get(name)).parameters.values()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)


@pytest.mark.parametrize("name", OFFLINE)
def test_every_offline_data_set_loads_by_name(name: str) -> None:
    ds = load_dataset(name)
    assert isinstance(ds, (ImageDataset, TabularDataset))
    assert ds.name == name
    assert len(ds) > 0


def test_digits() -> None:
    ds = load_digits()
    assert ds.x.shape == (1_797, 1, 8, 8) and ds.x.dtype == np.float32
    assert ds.y.dtype == np.int64 and ds.y.shape == (1_797,)
    assert ds.x.min() == 0.0 and ds.x.max() == 1.0
    assert ds.classes == [str(k) for k in range(10)]
    assert np.bincount(ds.y).min() >= 170

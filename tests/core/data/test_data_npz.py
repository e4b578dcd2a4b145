"""save_npz writes reproducible bytes; load_npz never unpickles."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from trustlab.core.data import ImageDataset, load_npz, save_npz
from trustlab.core.data.npz import NPZ_DATE_TIME
from trustlab.core.errors import DataError


def _arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.random((4, 1, 3, 3)).astype(np.float32),
        "y": np.array([0, 2, 1, 2], np.int64),
        "names": np.array(["a", "bb", "c", "d"]),
    }


def test_round_trip_keeps_values_dtypes_and_order(tmp_path: Path) -> None:
    arrays = _arrays()
    path = tmp_path / "data.npz"
    save_npz(path, **arrays)
    with np.load(path, allow_pickle=False) as loaded:
        assert loaded.files == ["x", "y", "names"]
        for key, value in arrays.items():
            assert loaded[key].dtype == value.dtype
            assert np.array_equal(loaded[key], value)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_same_arrays_give_identical_bytes(tmp_path: Path) -> None:
    save_npz(tmp_path / "a.npz", **_arrays())
    save_npz(tmp_path / "b.npz", **_arrays())
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with zipfile.ZipFile(tmp_path / "a.npz") as archive:
        for info in archive.infolist():
            assert info.date_time == NPZ_DATE_TIME
            assert info.compress_type == zipfile.ZIP_DEFLATED
            assert (info.external_attr >> 16) & 0o777 == 0o644


def test_overwrite_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    save_npz(path, x=np.zeros(3))
    save_npz(path, x=np.ones(2))
    assert np.array_equal(np.load(path)["x"], np.ones(2))


def test_save_refuses_object_arrays_and_nothing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="array 'bad': it has dtype=object"):
        save_npz(tmp_path / "a.npz", bad=np.array([{}, 1], dtype=object))
    with pytest.raises(DataError, match="at least one array"):
        save_npz(tmp_path / "a.npz")
    assert list(tmp_path.iterdir()) == []


def test_load_returns_a_pair_without_a_name(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    save_npz(path, images=np.zeros((2, 5), np.uint8), labels=np.array([1, 0]))
    x, y = load_npz(path, x_key="images", y_key="labels")
    assert x.dtype == np.uint8 and x.shape == (2, 5)
    assert np.array_equal(y, [1, 0])


def test_load_with_a_name_gives_an_image_dataset(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    arrays = _arrays()
    save_npz(path, x=arrays["x"].astype(np.float64), y=arrays["y"].astype(np.int32))
    ds = load_npz(path, name="mine")
    assert isinstance(ds, ImageDataset)
    assert ds.name == "mine" and ds.classes == ["0", "1", "2"]
    assert ds.x.dtype == np.float32 and ds.y.dtype == np.int64


def test_load_names_the_missing_key_and_lists_present_ones(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    save_npz(path, inputs=np.zeros(2), y=np.zeros(2))
    with pytest.raises(DataError) as err:
        load_npz(path)
    assert "no array 'x'" in str(err.value)
    assert "['inputs', 'y']" in str(err.value)


def test_load_refuses_pickled_object_arrays(tmp_path: Path) -> None:
    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(DataError, match="holds Python objects"):
        load_npz(path)


def test_load_refuses_missing_and_non_npz_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"No \.npz file"):
        load_npz(tmp_path / "nothing.npz")
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip at all")
    with pytest.raises(DataError, match=r"not a readable \.npz"):
        load_npz(junk)

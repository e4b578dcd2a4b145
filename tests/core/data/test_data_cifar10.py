"""The CIFAR-10 binary reader, on small fake .bin files written here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trustlab.core.data import load_cifar10
from trustlab.core.data.cifar10 import CIFAR10_FILES, CIFAR10_FOLDER, CIFAR10_RECORD_BYTES
from trustlab.core.errors import ConfigurationError, DataError


def _write_batch(path: Path, labels: list[int], seed: int) -> np.ndarray:
    pixels = np.random.default_rng(seed).integers(0, 256, (len(labels), 3072), dtype=np.uint8)
    records = np.concatenate([np.array(labels, np.uint8)[:, None], pixels], axis=1)
    path.write_bytes(records.tobytes())
    return pixels


def _fake_cifar(root: Path, *, nested: bool = True) -> Path:
    folder = root / CIFAR10_FOLDER if nested else root
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(CIFAR10_FILES["train"]):
        _write_batch(folder / name, [k, 9 - k], seed=k)
    _write_batch(folder / "test_batch.bin", [3, 4, 5], seed=99)
    return folder


@pytest.mark.parametrize("nested", [True, False])
def test_reads_train_and_test_batches(tmp_path: Path, nested: bool) -> None:
    _fake_cifar(tmp_path, nested=nested)
    train = load_cifar10(root=tmp_path, split="train")
    assert train.x.shape == (10, 3, 32, 32) and train.x.dtype == np.float32
    assert train.y.tolist() == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
    test = load_cifar10(root=str(tmp_path), split="test")
    assert len(test) == 3 and test.classes[3] == "cat"


def test_pixel_layout_is_channel_row_column(tmp_path: Path) -> None:
    folder = _fake_cifar(tmp_path)
    pixels = _write_batch(folder / "test_batch.bin", [1], seed=5)
    ds = load_cifar10(root=folder, split="test")
    # byte 1 + c*1024 + r*32 + col holds channel c, row r, column col
    assert ds.x[0, 2, 5, 7] == np.float32(pixels[0, 2 * 1024 + 5 * 32 + 7] / 255.0)
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0


def test_missing_files_are_named_with_where_to_get_them(tmp_path: Path) -> None:
    folder = _fake_cifar(tmp_path)
    (folder / "data_batch_3.bin").unlink()
    with pytest.raises(DataError) as err:
        load_cifar10(root=tmp_path)
    message = str(err.value)
    assert "['data_batch_3.bin']" in message
    assert "binary version" in message and "cs.toronto.edu" in message
    with pytest.raises(DataError, match=r"test_batch\.bin"):
        load_cifar10(root=tmp_path / "elsewhere", split="test")


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    folder = _fake_cifar(tmp_path)
    path = folder / "test_batch.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError) as err:
        load_cifar10(root=tmp_path, split="test")
    assert f"{3 * CIFAR10_RECORD_BYTES - 10} bytes" in str(err.value)
    assert "truncated" in str(err.value)


def test_bad_label_and_split_are_refused(tmp_path: Path) -> None:
    folder = _fake_cifar(tmp_path)
    _write_batch(folder / "test_batch.bin", [10], seed=0)
    with pytest.raises(DataError, match="label byte 10"):
        load_cifar10(root=tmp_path, split="test")
    with pytest.raises(ConfigurationError, match="'split' parameter of load_cifar10"):
        load_cifar10(root=tmp_path, split="valid")

"""CIFAR-10 read from a local copy of its binary version (no download, no pickle).

CIFAR-10 (Krizhevsky, 2009) cannot be vendored, so the user downloads the *binary version*
(``cifar-10-binary.tar.gz`` from https://www.cs.toronto.edu/~kriz/cifar.html), extracts it and
passes the folder. The Python version is not read: it is pickled, and unpickling runs code.

Each ``.bin`` file is a sequence of 3,073-byte records: one label byte (0..9) followed by
3,072 pixel bytes, the 1,024 red, then green, then blue values of a 32x32 image, row by row.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

import numpy as np

from trustlab.core.data._catalog import DATASETS
from trustlab.core.data._tabular import check_split
from trustlab.core.data.records import ImageDataset
from trustlab.core.errors import DataError

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
CIFAR10_FOLDER = "cifar-10-batches-bin"
CIFAR10_FILES = {
    "train": tuple(f"data_batch_{k}.bin" for k in range(1, 6)),
    "test": ("test_batch.bin",),
}
CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32
CIFAR10_SPLITS = ("train", "test")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar.html"

MSG_MISSING_FILES = (
    "CIFAR-10 {split} file(s) {missing} not found in {where}. Download the binary version"
    " (cifar-10-binary.tar.gz, not the Python or Matlab one) from {url}, extract it and pass the"
    " folder that holds {folder!r} (or that folder itself) as root."
)
MSG_BAD_SIZE = (
    "CIFAR-10 file {path} has {size} bytes, which is not a positive multiple of the"
    " {record}-byte record (1 label byte + 3072 pixel bytes); the file is truncated or not"
    " from the binary version."
)
MSG_BAD_LABEL = "CIFAR-10 file {path} holds label byte {label}; labels must be 0 to 9."

PathLike = Union[str, "os.PathLike[str]"]


def _folder(root: Path) -> Path:
    nested = root / CIFAR10_FOLDER
    return nested if nested.is_dir() else root


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    size = path.stat().st_size
    if size == 0 or size % CIFAR10_RECORD_BYTES:
        raise DataError(MSG_BAD_SIZE.format(path=path, size=size, record=CIFAR10_RECORD_BYTES))
    records = np.fromfile(path, dtype=np.uint8).reshape(-1, CIFAR10_RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > len(CIFAR10_CLASSES) - 1:
        raise DataError(MSG_BAD_LABEL.format(path=path, label=int(labels.max())))
    return records[:, 1:], labels


@DATASETS.register("cifar10")
def load_cifar10(*, root: PathLike, split: str = "train") -> ImageDataset:
    """Load CIFAR-10 from the binary version's ``.bin`` files.

    Parameters
    ----------
    root : str or os.PathLike
        A folder that holds ``cifar-10-batches-bin/``, or that folder itself.
    split : {"train", "test"}
        ``data_batch_1.bin`` .. ``data_batch_5.bin`` (50,000 images) or ``test_batch.bin``
        (10,000 images).

    Returns
    -------
    ImageDataset
        ``x`` float32 (N, 3, 32, 32), the bytes divided by 255; ``y`` int64 class codes;
        ``classes`` "airplane" .. "truck". About 600 MB for the train split.

    Raises
    ------
    DataError
        If a file is missing (the message lists them and where to get them), has a size that is
        not a whole number of records, or holds a label above 9.
    ConfigurationError
        If ``split`` is not "train" or "test".

    Examples
    --------
    >>> ds = load_cifar10(root="~/data", split="test")  # doctest: +SKIP
    >>> ds.x.shape  # doctest: +SKIP
    (10000, 3, 32, 32)
    """
    check_split("load_cifar10", split, CIFAR10_SPLITS)
    folder = _folder(Path(root).expanduser())
    paths = [folder / name for name in CIFAR10_FILES[split]]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DataError(
            MSG_MISSING_FILES.format(
                split=split, missing=missing, where=folder, url=CIFAR10_URL, folder=CIFAR10_FOLDER
            )
        )
    batches = [_read_batch(p) for p in paths]
    pixels = np.concatenate([b[0] for b in batches])
    x = pixels.reshape(-1, 3, 32, 32).astype(np.float32)
    x /= np.float32(255.0)
    return ImageDataset(
        name="cifar10",
        x=x,
        y=np.concatenate([b[1] for b in batches]),
        classes=list(CIFAR10_CLASSES),
    )

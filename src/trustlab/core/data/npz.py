"""Safe, deterministic ``.npz`` files: read without pickle, write byte for byte reproducibly.

``np.savez`` stamps the current time into every zip entry, so saving the same arrays twice gives
different files (and different hashes). :func:`save_npz` writes the zip itself with a fixed date,
fixed permissions and entries in the given order, so equal arrays give identical bytes.
:func:`load_npz` never unpickles: object arrays are refused.
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path
from typing import Union, overload

import numpy as np

from trustlab.core.data.records import ImageDataset
from trustlab.core.errors import DataError

PathLike = Union[str, "os.PathLike[str]"]

NPZ_DATE_TIME = (1980, 1, 1, 0, 0, 0)
"""The date of every entry written by :func:`save_npz` (the earliest a zip file can hold)."""
NPZ_FILE_MODE = 0o644
"""Unix permissions recorded for every entry and given to the written file."""

MSG_NO_FILE = "No .npz file at {path}."
MSG_NOT_NPZ = "{path} is not a readable .npz file: {reason}."
MSG_MISSING_KEY = "{path} has no array {key!r} (the {param} parameter). Arrays present: {present}."
MSG_PICKLED = (
    "{path}: array {key!r} holds Python objects (dtype=object), which can only be read by"
    " unpickling, and unpickling can run arbitrary code; save plain numeric arrays instead."
)
MSG_NO_ARRAYS = "save_npz needs at least one array, given as name=array."
MSG_OBJECT_ARRAY = (
    "save_npz cannot write array {key!r}: it has dtype=object, which would need pickle;"
    " convert it to a numeric or string dtype."
)
MSG_BAD_NAME = "save_npz cannot write an array named {key!r}: names may not contain '/' or '\\'."
MSG_LABEL_DTYPE = "{path}: labels {key!r} must be integers to build an ImageDataset. Got {dtype}."
MSG_IMAGE_DTYPE = "{path}: images {key!r} must be numeric to build an ImageDataset. Got {dtype}."


def _open(path: Path) -> np.lib.npyio.NpzFile:
    if not path.is_file():
        raise DataError(MSG_NO_FILE.format(path=path))
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DataError(MSG_NOT_NPZ.format(path=path, reason=err)) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise DataError(MSG_NOT_NPZ.format(path=path, reason="it holds a single .npy array"))
    return loaded


def _read(npz: np.lib.npyio.NpzFile, path: Path, key: str, param: str) -> np.ndarray:
    if key not in npz.files:
        raise DataError(
            MSG_MISSING_KEY.format(path=path, key=key, param=param, present=sorted(npz.files))
        )
    try:
        return np.asarray(npz[key])
    except ValueError:  # "Object arrays cannot be loaded when allow_pickle=False"
        raise DataError(MSG_PICKLED.format(path=path, key=key)) from None


@overload
def load_npz(
    path: PathLike,
    *,
    x_key: str = ...,
    y_key: str = ...,
    name: None = ...,
    classes: list[str] | None = ...,
) -> tuple[np.ndarray, np.ndarray]: ...
@overload
def load_npz(
    path: PathLike,
    *,
    x_key: str = ...,
    y_key: str = ...,
    name: str,
    classes: list[str] | None = ...,
) -> ImageDataset: ...
def load_npz(
    path: PathLike,
    *,
    x_key: str = "x",
    y_key: str = "y",
    name: str | None = None,
    classes: list[str] | None = None,
) -> tuple[np.ndarray, np.ndarray] | ImageDataset:
    """Read two arrays from an ``.npz`` file, never unpickling.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file.
    x_key, y_key : str
        Names of the inputs and the labels inside the file.
    name : str, optional
        Without a name, the two arrays come back as stored, as a plain ``(x, y)`` pair. With a
        name, they are checked and returned as an :class:`ImageDataset`: ``x`` cast to float32
        (it must already be (N, C, H, W) in [0, 1]) and ``y`` to int64.
    classes : list of str, optional
        Class names of the :class:`ImageDataset`; by default "0" .. str(max(y)).

    Returns
    -------
    (x, y) or ImageDataset

    Raises
    ------
    DataError
        If the file is missing or not an ``.npz``, a key is missing (the message lists the keys
        present), an array holds Python objects, or the dataset checks fail.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "d.npz")
    >>> save_npz(path, x=np.zeros((2, 1, 2, 2), np.float32), y=np.array([0, 1]))
    >>> load_npz(path, name="tiny").x.shape
    (2, 1, 2, 2)
    """
    where = Path(path)
    with _open(where) as npz:
        x = _read(npz, where, x_key, "x_key")
        y = _read(npz, where, y_key, "y_key")
    if name is None:
        return x, y
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DataError(MSG_IMAGE_DTYPE.format(path=where, key=x_key, dtype=x.dtype))
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(MSG_LABEL_DTYPE.format(path=where, key=y_key, dtype=y.dtype))
    y = y.astype(np.int64)
    if classes is None:
        classes = [str(k) for k in range(int(y.max()) + 1 if y.size else 1)]
    return ImageDataset(name=name, x=x.astype(np.float32), y=y, classes=list(classes))


def save_npz(path: PathLike, **arrays: np.ndarray) -> None:
    """Write arrays to an ``.npz`` file that ``np.load`` reads, with reproducible bytes.

    Unlike ``np.savez``, the same arrays always give the same file: every entry is dated
    1980-01-01 00:00:00 with permissions 0644 and "Unix" as the creating system, entries are
    written in the order given and compressed with ZIP_DEFLATED, and arrays are written with
    ``allow_pickle=False``. The file is written to a temporary file in the same folder and then
    moved into place with ``os.replace``, so a reader never sees half a file. The path is used
    as given (no ``.npz`` is appended).

    Parameters
    ----------
    path : str or os.PathLike
        Where to write.
    **arrays : np.ndarray
        The arrays by name (``name`` is stored as ``name.npy``). Object arrays are refused.

    Raises
    ------
    DataError
        If no array is given, a name contains a path separator or an array has dtype=object.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> save_npz(path, weights=np.arange(3))
    >>> np.load(path)["weights"]
    array([0, 1, 2])
    """
    if not arrays:
        raise DataError(MSG_NO_ARRAYS)
    prepared: list[tuple[str, np.ndarray]] = []
    for key, value in arrays.items():
        if "/" in key or "\\" in key:
            raise DataError(MSG_BAD_NAME.format(key=key))
        array = np.asarray(value)
        if array.dtype.hasobject:
            raise DataError(MSG_OBJECT_ARRAY.format(key=key))
        prepared.append((key, array))

    target = Path(path)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as raw:
            with zipfile.ZipFile(raw, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
                for key, array in prepared:
                    info = zipfile.ZipInfo(key + ".npy", date_time=NPZ_DATE_TIME)
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.create_system = 3  # Unix, whatever the platform writing the file
                    info.external_attr = (0o100000 | NPZ_FILE_MODE) << 16  # regular file, 0644
                    with archive.open(info, mode="w", force_zip64=True) as entry:
                        np.lib.format.write_array(entry, array, allow_pickle=False)
            raw.flush()
            os.fsync(raw.fileno())
        os.chmod(tmp_name, NPZ_FILE_MODE)
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise

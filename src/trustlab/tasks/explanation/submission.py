"""Reading a submitted ``.npz`` of attribution maps, refusing bad files with a clear reason."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from trustlab.core.errors import SubmissionError

MSG_NOT_NPZ = (
    "The file is not a NumPy .npz archive ({error}). Save the maps with "
    "np.savez(path, **{{str(id): map for id, map in ...}})."
)
MSG_BAD_MEMBER = (
    "Entry {name!r} of the archive is not a .npy array; the archive must hold only one array "
    "per input id."
)
MSG_UNREADABLE = "The map for id {key} cannot be read ({error}); save it as a float array."
MSG_TOO_LARGE = (
    "The map for id {key} takes {size} bytes once unpacked; a map of shape {shape} takes at "
    "most {limit}. Submit one (H, W) or (C, H, W) float map per id."
)
MSG_BAD_KEY = (
    "Entry {key!r} is not an input id; name each array by its id from inputs.npz, as text "
    "(e.g. '0', '17')."
)
MSG_EXTRA = "Id {key} is not one of the input ids of inputs.npz; remove it."
MSG_MISSING = (
    "{count} input id(s) have no map, e.g. {examples}; give a map for every id in inputs.npz "
    "({n} ids)."
)
MSG_DTYPE = (
    "The map for id {key} has dtype {dtype}; maps must be floating-point numbers (float16, "
    "float32 or float64)."
)
MSG_SHAPE = "The map for id {key} has shape {shape}; it must have shape {hw} or {chw}."
MSG_NON_FINITE = "The map for id {key} holds {what}; every value must be a finite number."

#: Slack for the .npy header when bounding an entry's unpacked size.
NPY_HEADER_BYTES = 4096


def read_maps(path: Path, *, ids: np.ndarray, image_shape: tuple[int, int, int]) -> np.ndarray:
    """The submitted maps, in the order of ``ids``, pooled to ``(n, H, W)`` float64.

    A ``(C, H, W)`` map is summed over its channels. Every check names the entry to fix.

    Parameters
    ----------
    path : pathlib.Path
        The uploaded file.
    ids : np.ndarray of int64
        The task's input ids.
    image_shape : tuple of int
        ``(C, H, W)`` of the inputs.

    Raises
    ------
    SubmissionError
        If the file is not an npz archive, holds something other than one finite float map of
        shape (H, W) or (C, H, W) per id, misses an id or names one that is not an input.
    """
    channels, height, width = image_shape
    limit = channels * height * width * 8 + NPY_HEADER_BYTES
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise SubmissionError(MSG_NOT_NPZ.format(error=str(exc)[:80])) from None
    known = {str(i): index for index, i in enumerate(ids.tolist())}
    names: list[str] = []
    for member in members:
        if not member.filename.endswith(".npy") or member.is_dir():
            raise SubmissionError(MSG_BAD_MEMBER.format(name=member.filename[:60]))
        key = member.filename[: -len(".npy")]
        if member.file_size > limit:
            raise SubmissionError(
                MSG_TOO_LARGE.format(
                    key=key[:40], size=member.file_size, shape=image_shape, limit=limit
                )
            )
        if not key.lstrip("-").isdigit():
            raise SubmissionError(MSG_BAD_KEY.format(key=key[:40]))
        if key not in known:
            raise SubmissionError(MSG_EXTRA.format(key=key[:40]))
        names.append(key)
    missing = [key for key in known if key not in set(names)]
    if missing:
        raise SubmissionError(
            MSG_MISSING.format(count=len(missing), examples=", ".join(missing[:5]), n=len(known))
        )
    maps = np.empty((len(ids), height, width), dtype=np.float64)
    with np.load(path, allow_pickle=False) as archive:
        for key in names:
            try:
                value = archive[key]
            except Exception as exc:  # a malformed .npy, or an object array (no pickle)
                raise SubmissionError(MSG_UNREADABLE.format(key=key, error=str(exc)[:80])) from None
            maps[known[key]] = _check_map(key, value, channels, height, width)
    return maps


def _check_map(key: str, value: np.ndarray, channels: int, height: int, width: int) -> np.ndarray:
    if not np.issubdtype(value.dtype, np.floating):
        raise SubmissionError(MSG_DTYPE.format(key=key, dtype=value.dtype))
    if value.shape == (channels, height, width):
        value = value.astype(np.float64).sum(axis=0)
    elif value.shape != (height, width):
        raise SubmissionError(
            MSG_SHAPE.format(
                key=key, shape=value.shape, hw=(height, width), chw=(channels, height, width)
            )
        )
    if not np.isfinite(value).all():
        what = "NaN" if np.isnan(value).any() else "an infinity"
        raise SubmissionError(MSG_NON_FINITE.format(key=key, what=what))
    return value.astype(np.float64)

"""Type aliases shared across trustlab."""

from __future__ import annotations

import os
from typing import Union

import numpy as np
import numpy.typing as npt
import torch

PathLike = Union[str, "os.PathLike[str]"]
ArrayLike = Union[np.ndarray, torch.Tensor, "npt.ArrayLike"]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

"""Digits on a noisy canvas: images whose correct explanation is known.

Each of scikit-learn's 8x8 digits is pasted at a random, seeded position on a larger canvas of
uniform noise. The label depends on the digit alone, so the 8x8 box it occupies is a ground-
truth mask for localisation metrics (pointing game, relevance mass, Arras et al., 2022).
Optionally a small bright square (a *spurious patch*) is drawn at a corner chosen by the label
for a fraction of the training images and at a random corner in the test images, so that a
model that learns the shortcut shows it in its explanations.

:func:`make_digits_canvas` returns the images with their masks (:class:`DigitsCanvas`);
``load_dataset("digits-canvas", ...)`` returns the images as an :class:`ImageDataset`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from trustlab.core.data._catalog import DATASETS
from trustlab.core.data.digits import DIGIT_CLASSES, load_digits
from trustlab.core.data.records import ImageDataset
from trustlab.core.data.split import train_test_split_indices
from trustlab.core.params import Integer, Options, Real, Seed, check_param

__all__ = ["DigitsCanvas", "load_digits_canvas", "make_digits_canvas"]

#: The side of one digit, in pixels.
DIGIT_SIZE = 8
#: The side of the spurious patch, in pixels.
PATCH_SIZE = 3
OWNER = "make_digits_canvas"


@dataclass(frozen=True, eq=False)
class DigitsCanvas:
    """Digits pasted on noise, with where each digit is.

    Attributes
    ----------
    x : np.ndarray of float32, shape (N, 1, size, size)
        The canvases, values in [0, 1].
    y : np.ndarray of int64, shape (N,)
        The digit of each canvas.
    masks : np.ndarray of bool, shape (N, size, size)
        True on the 8x8 box of the digit.
    positions : np.ndarray of int64, shape (N, 2)
        Row and column of the box's top-left corner.
    patch_masks : np.ndarray of bool, shape (N, size, size)
        True on the spurious patch (all False where there is none).
    """

    x: np.ndarray
    y: np.ndarray
    masks: np.ndarray
    positions: np.ndarray
    patch_masks: np.ndarray

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def dataset(self, name: str = "digits-canvas") -> ImageDataset:
        """The images and labels as an :class:`ImageDataset` (masks dropped)."""
        return ImageDataset(name=name, x=self.x, y=self.y, classes=list(DIGIT_CLASSES))


def _corners(size: int) -> np.ndarray:
    far = size - PATCH_SIZE
    return np.array([[0, 0], [0, far], [far, 0], [far, far]], dtype=np.int64)


def make_digits_canvas(
    *,
    split: str = "all",
    size: int = 24,
    noise: float = 0.35,
    spurious: float = 0.0,
    test_fraction: float = 0.3,
    seed: int = 0,
) -> DigitsCanvas:
    """Paste every digit of scikit-learn's set at a random position on a noisy canvas.

    Parameters
    ----------
    split : {"all", "train", "test"}, default="all"
        Which digits: a seeded, stratified split of the 1,797 digits
        (:func:`~trustlab.core.data.train_test_split_indices`).
    size : int, default=24
        Side of the square canvas, >= 12.
    noise : float, default=0.35
        Background pixels are uniform in [0, noise]; a digit pixel is the larger of the digit
        and the noise beneath it.
    spurious : float, default=0.0
        In the ``train`` split, the fraction of images that get a bright 3x3 patch at the corner
        ``label % 4`` (a shortcut). In the ``test`` split the same fraction get a patch at a
        random corner (no correlation with the label). 0 draws no patch.
    test_fraction : float, default=0.3
        Share of the digits in the test split.
    seed : int, default=0
        Seeds the split, the positions, the noise and the patches.

    Returns
    -------
    DigitsCanvas

    Examples
    --------
    >>> canvas = make_digits_canvas(split="test", size=16, seed=1)
    >>> canvas.x.shape[1:], int(canvas.masks[0].sum())
    ((1, 16, 16), 64)
    """
    split = check_param(split, Options("all", "train", "test"), name="split", owner=OWNER)
    size = check_param(size, Integer(low=12, high=512), name="size", owner=OWNER)
    noise = check_param(noise, Real(low=0, high=1), name="noise", owner=OWNER)
    spurious = check_param(spurious, Real(low=0, high=1), name="spurious", owner=OWNER)
    test_fraction = check_param(
        test_fraction, Real(low=0, high=1, closed="neither"), name="test_fraction", owner=OWNER
    )
    seed = check_param(seed, Seed, name="seed", owner=OWNER)
    digits = load_digits()
    index = np.arange(len(digits))
    if split != "all":
        train, test = train_test_split_indices(
            len(digits), test_fraction=test_fraction, seed=seed, stratify=digits.y
        )
        index = train if split == "train" else test
    images, labels = digits.x[index, 0], digits.y[index]
    n = len(index)
    # One generator per split, so the train and test canvases never share draws.
    rng = np.random.default_rng([seed, ("all", "train", "test").index(split)])
    x = rng.uniform(0.0, noise, size=(n, size, size)).astype(np.float32)
    positions = rng.integers(0, size - DIGIT_SIZE + 1, size=(n, 2))
    masks = np.zeros((n, size, size), dtype=bool)
    for i, (row, col) in enumerate(positions):
        box = (i, slice(row, row + DIGIT_SIZE), slice(col, col + DIGIT_SIZE))
        x[box] = np.maximum(x[box], images[i])
        masks[box] = True
    patch_masks = np.zeros_like(masks)
    has_patch = rng.random(n) < spurious
    random_corner = rng.integers(0, 4, size=n)
    corners = _corners(size)
    for i in np.flatnonzero(has_patch).tolist():
        corner = int(labels[i] % 4 if split == "train" else random_corner[i])
        row, col = corners[corner]
        box = (i, slice(row, row + PATCH_SIZE), slice(col, col + PATCH_SIZE))
        x[box] = 1.0
        patch_masks[box] = True
    return DigitsCanvas(
        x=x[:, None],
        y=np.asarray(labels, dtype=np.int64),
        masks=masks,
        positions=positions.astype(np.int64),
        patch_masks=patch_masks,
    )


@DATASETS.register("digits-canvas")
def load_digits_canvas(
    *,
    split: str = "all",
    size: int = 24,
    noise: float = 0.35,
    spurious: float = 0.0,
    seed: int = 0,
) -> ImageDataset:
    """The canvases of :func:`make_digits_canvas` as an :class:`ImageDataset` (no masks).

    Examples
    --------
    >>> load_digits_canvas(split="train").x.shape
    (1257, 1, 24, 24)
    """
    canvas = make_digits_canvas(split=split, size=size, noise=noise, spurious=spurious, seed=seed)
    return canvas.dataset()

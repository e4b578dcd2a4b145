"""The digits-canvas data set and the canvas-cnn architecture."""

from __future__ import annotations

import numpy as np
import pytest

from trustlab.core.data import load_dataset
from trustlab.core.data.digits_canvas import DIGIT_SIZE, make_digits_canvas
from trustlab.core.errors import ConfigurationError


def test_digits_sit_inside_their_masks() -> None:
    canvas = make_digits_canvas(split="test", size=16, noise=0.2, seed=3)
    n = len(canvas)
    assert canvas.x.shape == (n, 1, 16, 16) and canvas.x.dtype == np.float32
    assert canvas.masks.shape == (n, 16, 16)
    assert (canvas.masks.reshape(n, -1).sum(axis=1) == DIGIT_SIZE**2).all()
    outside = canvas.x[:, 0][~canvas.masks]
    assert outside.max() <= 0.2, "only noise outside the digit"
    row, col = canvas.positions[0]
    assert canvas.masks[0, row, col] and canvas.masks[0, row + 7, col + 7]
    assert not canvas.patch_masks.any()
    again = make_digits_canvas(split="test", size=16, noise=0.2, seed=3)
    assert np.array_equal(again.x, canvas.x) and np.array_equal(again.masks, canvas.masks)


def test_the_spurious_patch_follows_the_label_only_in_training() -> None:
    train = make_digits_canvas(split="train", spurious=1.0, seed=0)
    test = make_digits_canvas(split="test", spurious=1.0, seed=0)
    for canvas, correlated in ((train, True), (test, False)):
        assert (canvas.patch_masks.reshape(len(canvas), -1).sum(axis=1) == 9).all()
        corner_top = canvas.patch_masks[:, 0, 0] | canvas.patch_masks[:, 0, -1]
        matches = corner_top == (canvas.y % 4 < 2)
        assert matches.all() == correlated
        assert not (canvas.patch_masks & canvas.masks).all()


def test_loader_and_checks() -> None:
    data = load_dataset("digits-canvas", split="train", size=20)
    assert data.name == "digits-canvas" and data.x.shape[1:] == (1, 20, 20)
    assert len(data) + len(load_dataset("digits-canvas", split="test")) == 1797
    with pytest.raises(ConfigurationError, match="'size' parameter of make_digits_canvas"):
        make_digits_canvas(size=4)

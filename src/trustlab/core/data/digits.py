"""The 8x8 handwritten digits that ship with scikit-learn (no download).

1,797 grey images of the digits 0 to 9 (UCI "Optical Recognition of Handwritten Digits",
test part), 16 grey levels. Small enough to train and attack a model in seconds, which makes it
the default image data set of tests and examples.
"""

from __future__ import annotations

import numpy as np

from trustlab.core.data._catalog import DATASETS
from trustlab.core.data.records import ImageDataset

DIGIT_CLASSES = [str(k) for k in range(10)]


@DATASETS.register("digits")
def load_digits() -> ImageDataset:
    """Load scikit-learn's digits as an :class:`ImageDataset` named "digits".

    Returns
    -------
    ImageDataset
        ``x`` float32 of shape (1797, 1, 8, 8): the 0..16 grey levels divided by 16, so in
        [0, 1]; ``y`` int64 digit codes; ``classes`` "0" to "9".

    Examples
    --------
    >>> ds = load_digits()
    >>> ds.x.shape, ds.classes[:3]
    ((1797, 1, 8, 8), ['0', '1', '2'])
    """
    from sklearn.datasets import load_digits as sklearn_load_digits  # slow import, done lazily

    bunch = sklearn_load_digits()
    images = np.asarray(bunch.images, dtype=np.float32) / np.float32(16.0)
    return ImageDataset(
        name="digits",
        x=images[:, None, :, :],
        y=np.asarray(bunch.target, dtype=np.int64),
        classes=list(DIGIT_CLASSES),
    )

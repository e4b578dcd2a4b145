"""Data sets that load offline, as validated numpy records.

Tabular fairness data (UCI Adult, UCI German Credit, ProPublica COMPAS) ships with trustlab in
``_vendor/`` (see ``_vendor/ATTRIBUTION.md`` for sources and licences); scikit-learn's digits
ship with scikit-learn; CIFAR-10 is read from a local copy of its binary version. Every loader
is registered in :data:`DATASETS` and reachable by name through :func:`load_dataset`.

Examples
--------
>>> from trustlab.core.data import list_datasets, load_dataset
>>> list_datasets()
['adult', 'cifar10', 'compas', 'digits', 'digits-canvas', 'german']
>>> load_dataset("adult", split="test").x.shape
(15060, 89)
"""

from trustlab.core.data._catalog import DATASETS, Loader, list_datasets, load_dataset
from trustlab.core.data.adult import load_adult
from trustlab.core.data.cifar10 import load_cifar10
from trustlab.core.data.compas import load_compas
from trustlab.core.data.digits import load_digits
from trustlab.core.data.digits_canvas import load_digits_canvas
from trustlab.core.data.german import load_german
from trustlab.core.data.npz import load_npz, save_npz
from trustlab.core.data.records import Dataset, ImageDataset, TabularDataset
from trustlab.core.data.split import train_test_split_indices

__all__ = [
    "DATASETS",
    "Dataset",
    "ImageDataset",
    "Loader",
    "TabularDataset",
    "list_datasets",
    "load_adult",
    "load_cifar10",
    "load_compas",
    "load_dataset",
    "load_digits",
    "load_digits_canvas",
    "load_german",
    "load_npz",
    "save_npz",
    "train_test_split_indices",
]

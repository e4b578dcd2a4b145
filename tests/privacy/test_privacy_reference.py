"""Tests of ReferenceModels: the split, vectorised training, saving and loading, bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from privacy_population import ARGUMENTS, Population, make_data
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.models import ARCHITECTURES, register_architecture
from trustlab.core.params import MSG_PARAM
from trustlab.core.training import accuracy
from trustlab.privacy import ReferenceModels
from trustlab.privacy.base import MSG_LENGTH, MSG_Y_RANGE
from trustlab.privacy.reference import (
    MANIFEST,
    MSG_CANNOT_VECTORISE,
    MSG_EXISTS,
    MSG_MEMBERSHIP_SHAPE,
    MSG_OTHER_ARCHITECTURE,
    MSG_OTHER_POPULATION,
    MSG_POPULATION_TOO_SMALL,
    MSG_SUBSET,
    MSG_X_AND_Y,
    split_population,
)


def _train(**overrides: object) -> ReferenceModels:
    x, y = make_data(120, seed=3)
    options: dict[str, object] = {
        "architecture": "mlp",
        "arguments": ARGUMENTS,
        "x": x,
        "y": y,
        "n_models": 2,
        "epochs": 2,
        "batch_size": 16,
    }
    options.update(overrides)
    return ReferenceModels.train(**options)  # type: ignore[arg-type]


@pytest.mark.parametrize(("n_models", "n_population"), [(4, 10), (6, 11), (2, 2)])
def test_split_is_balanced_and_halves(n_models: int, n_population: int) -> None:
    membership = split_population(n_models, n_population, seed=0)
    assert membership.shape == (n_models, n_population)
    assert (membership.sum(axis=0) == n_models // 2).all()
    sizes = membership.sum(axis=1)
    assert set(sizes) <= {n_population // 2, (n_population + 1) // 2}
    np.testing.assert_array_equal(membership, split_population(n_models, n_population, seed=0))


def test_odd_number_of_models_gives_each_a_half() -> None:
    membership = split_population(3, 100, seed=1)
    assert (membership.sum(axis=1) >= 50).all()
    assert (membership[0] != membership[1]).all()


def test_vectorised_and_sequential_train_the_same_models() -> None:
    x, y = make_data(200, seed=5)
    options = {
        "architecture": "mlp",
        "arguments": ARGUMENTS,
        "x": x,
        "y": y,
        "n_models": 4,
        "epochs": 5,
        "lr": 1e-2,
        "batch_size": 32,
        "seed": 3,
    }
    vectorised = ReferenceModels.train(**options, vectorise=True)  # type: ignore[arg-type]
    sequential = ReferenceModels.train(**options, vectorise=False)  # type: ignore[arg-type]
    assert vectorised.recipe["vectorised"] and not sequential.recipe["vectorised"]
    np.testing.assert_array_equal(vectorised.membership, sequential.membership)
    torch.testing.assert_close(vectorised.logits(x), sequential.logits(x), atol=2e-3, rtol=1e-3)
    for a, b in zip(vectorised.models, sequential.models, strict=True):
        assert abs(accuracy(a, x, y) - accuracy(b, x, y)) <= 0.01


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_vectorised_optimisers_match_torch(optimizer: str) -> None:
    options = {"optimizer": optimizer, "weight_decay": 1e-2, "lr": 1e-2, "epochs": 3}
    x, _ = make_data(120, seed=3)
    vectorised = _train(**options, vectorise=True)
    sequential = _train(**options, vectorise=False)
    torch.testing.assert_close(vectorised.logits(x), sequential.logits(x), atol=1e-3, rtol=1e-3)


def test_a_seed_gives_the_same_models() -> None:
    x, _ = make_data(120, seed=3)
    first, second, other = _train(seed=4), _train(seed=4), _train(seed=5)
    torch.testing.assert_close(first.logits(x), second.logits(x), atol=0, rtol=0)
    assert not torch.equal(first.logits(x), other.logits(x))


def test_logits_shape_and_eval_mode(population: Population) -> None:
    logits = population.reference.logits(population.x[:7], batch_size=3)
    assert logits.shape == (4, 7, 3) and logits.device.type == "cpu"
    assert all(not model.training for model in population.reference.models)


def test_reference_models_fit_their_halves(population: Population) -> None:
    reference = population.reference
    for model, member in zip(reference.models, reference.membership, strict=True):
        inside = accuracy(model, population.x[member], population.y[member])
        outside = accuracy(model, population.x[~member], population.y[~member])
        assert inside > outside


def test_save_and_load_round_trip(population: Population, tmp_path: Path) -> None:
    folder = tmp_path / "refs"
    population.reference.save(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["architecture"] == "mlp" and len(manifest["files"]) == 4
    loaded = ReferenceModels.load(folder, x=population.x, y=population.y, architecture="mlp")
    np.testing.assert_array_equal(loaded.membership, population.reference.membership)
    assert loaded.recipe == population.reference.recipe
    torch.testing.assert_close(
        loaded.logits(population.x), population.reference.logits(population.x)
    )
    assert [p.name for p in tmp_path.iterdir()] == ["refs"]  # no staging folder left


def test_load_refuses_another_architecture(population: Population, tmp_path: Path) -> None:
    population.reference.save(tmp_path / "refs")
    message = MSG_OTHER_ARCHITECTURE.format(
        path=tmp_path / "refs",
        found="mlp",
        found_arguments=population.reference.arguments,
        expected="digits-cnn",
    )
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        ReferenceModels.load(tmp_path / "refs", architecture="digits-cnn")


def test_load_refuses_another_population(population: Population, tmp_path: Path) -> None:
    population.reference.save(tmp_path / "refs")
    x = population.x.copy()
    x[0, 0] += 1.0
    with pytest.raises(ConfigurationError, match="another population"):
        ReferenceModels.load(tmp_path / "refs", x=x, y=population.y)
    assert MSG_OTHER_POPULATION.startswith("The reference models in")


def test_save_refuses_a_used_folder_and_leaves_it_alone(
    population: Population, tmp_path: Path
) -> None:
    folder = tmp_path / "refs"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(ConfigurationError, match=re.escape(MSG_EXISTS.format(path=folder))):
        population.reference.save(folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["refs"]


def test_failed_save_writes_nothing(
    population: Population, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def failing(*args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")

    monkeypatch.setattr("trustlab.privacy.reference.save_model", failing)
    with pytest.raises(OSError, match="disk full"):
        population.reference.save(tmp_path / "refs")
    assert list(tmp_path.iterdir()) == []


def test_zero_models_is_refused() -> None:
    message = MSG_PARAM.format(
        name="n_models", owner="ReferenceModels.train", rule="an int >= 1", value=0
    )
    with pytest.raises(ConfigurationError) as info:
        _train(n_models=0)
    assert str(info.value) == message


def test_population_too_small() -> None:
    x, y = make_data(1, seed=0)
    with pytest.raises(DataError, match=re.escape(MSG_POPULATION_TOO_SMALL.format(n=1))):
        _train(x=x, y=y)


def test_bad_population_shapes_and_labels() -> None:
    x, y = make_data(20, seed=0)
    message = MSG_LENGTH.format(first="x", second="y", n_first=20, n_second=19)
    with pytest.raises(DataError, match=re.escape(message)):
        _train(x=x, y=y[:-1])
    y = y.copy()
    y[4] = 3
    with pytest.raises(
        DataError, match=re.escape(MSG_Y_RANGE.format(n_classes=3, value=3, index=4))
    ):
        _train(x=x, y=y)


def test_vectorise_refused_for_an_architecture_with_buffers() -> None:
    @register_architecture("test-batchnorm-mlp")
    class Normed(nn.Module):
        def __init__(self, *, in_features: int = 6) -> None:
            super().__init__()
            self.norm = nn.BatchNorm1d(in_features)
            self.head = nn.Linear(in_features, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.norm(x))

    try:
        message = MSG_CANNOT_VECTORISE.format(
            architecture="test-batchnorm-mlp",
            buffers="norm.running_mean, norm.running_var, norm.num_batches_tracked",
        )
        with pytest.raises(ConfigurationError, match=re.escape(message)):
            _train(architecture="test-batchnorm-mlp", arguments={}, vectorise=True)
        fallback = _train(architecture="test-batchnorm-mlp", arguments={})
        assert fallback.recipe["vectorised"] is False
    finally:
        ARCHITECTURES.remove("test-batchnorm-mlp")


def test_x_that_does_not_fit_the_architecture() -> None:
    x, y = make_data(20, seed=0)
    with pytest.raises(DataError, match=re.escape("x of shape (20, 5) does not fit architecture")):
        _train(x=x[:, :5], y=y)


def test_load_needs_x_and_y_together(population: Population, tmp_path: Path) -> None:
    population.reference.save(tmp_path / "refs")
    with pytest.raises(ConfigurationError, match=re.escape(MSG_X_AND_Y.format(given="x"))):
        ReferenceModels.load(tmp_path / "refs", x=population.x)


def test_subset(population: Population) -> None:
    pair = population.reference.subset([2, 3])
    np.testing.assert_array_equal(pair.membership, population.reference.membership[2:])
    assert pair.models[0] is population.reference.models[2]
    with pytest.raises(
        ConfigurationError, match=re.escape(MSG_SUBSET.format(n_models=4, indices=[1, 1]))
    ):
        population.reference.subset([1, 1])


def test_a_set_needs_one_membership_row_per_model() -> None:
    message = MSG_MEMBERSHIP_SHAPE.format(shape=(0, 3), n_models=0)
    with pytest.raises(DataError, match=re.escape(message)):
        ReferenceModels(
            architecture="mlp",
            arguments={},
            membership=np.zeros((0, 3), dtype=bool),
            models=[],
            recipe={},
            population={},
        )

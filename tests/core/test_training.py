"""The deterministic training loop, batched prediction and input validation."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.models import build_model
from trustlab.core.training import (
    MSG_LENGTH_MISMATCH,
    MSG_TOO_FEW_CLASSES,
    accuracy,
    fit_classifier,
    predict_logits,
    seed_everything,
)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[:, None, :, :]  # (1797, 1, 8, 8) in [0, 1]
    return x, data.target.astype(np.int64)


def _train_digits(x: np.ndarray, y: np.ndarray, *, seed: int, epochs: int) -> nn.Module:
    torch.manual_seed(0)
    model = build_model("digits-cnn")
    fit_classifier(model, x, y, epochs=epochs, lr=2e-3, batch_size=64, seed=seed)
    return model


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_gives_bit_identical_weights(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits[0][:512], digits[1][:512]
    first = _state(_train_digits(x, y, seed=7, epochs=2))
    second = _state(_train_digits(x, y, seed=7, epochs=2))
    assert all(torch.equal(first[k], second[k]) for k in first)
    other = _state(_train_digits(x, y, seed=8, epochs=2))
    assert not all(torch.equal(first[k], other[k]) for k in first)


def test_digits_cnn_learns_digits(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    model = _train_digits(x, y, seed=0, epochs=4)
    assert accuracy(model, x, y) > 0.9


def test_dropout_is_seeded_and_global_rng_is_restored() -> None:
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    states = []
    for _ in range(2):
        torch.manual_seed(1)
        model = build_model("mlp", arguments={"in_features": 4, "dropout": 0.5})
        torch.manual_seed(123)
        fit_classifier(model, x, y, epochs=2, batch_size=16, seed=3)
        after_training = torch.rand(2)
        torch.manual_seed(123)
        assert torch.equal(after_training, torch.rand(2))  # the caller's RNG is untouched
        states.append(_state(model))
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_deterministic_setting_is_restored() -> None:
    model = build_model("mlp", arguments={"in_features": 2})
    x, y = torch.randn(8, 2), torch.tensor([0, 1] * 4)
    assert not torch.are_deterministic_algorithms_enabled()
    fit_classifier(model, x, y, epochs=1)
    assert not torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        fit_classifier(model, x, y, epochs=1)
        assert torch.are_deterministic_algorithms_enabled()
        assert not torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_losses_progress_and_mode() -> None:
    torch.manual_seed(0)
    model = build_model("mlp", arguments={"in_features": 2, "hidden": [16]}).eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(256, 2, generator=gen)
    y = (x.sum(dim=1) > 0).long()
    seen: list[tuple[int, float]] = []
    losses = fit_classifier(
        model,
        x,
        y,
        epochs=5,
        lr=1e-2,
        progress=lambda event: seen.append((event.done, event.metrics["loss"])),
    )
    assert len(losses) == 5
    assert losses[-1] < losses[0]
    assert seen == list(enumerate(losses, start=1))
    assert not model.training  # mode restored
    assert accuracy(model, x, y) > 0.9


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd"])
def test_optimizers(optimizer: str) -> None:
    torch.manual_seed(0)
    model = build_model("mlp", arguments={"in_features": 2, "hidden": [8]})
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] > 0).long()
    losses = fit_classifier(model, x, y, epochs=10, lr=1e-2, optimizer=optimizer, weight_decay=1e-4)
    assert losses[-1] < losses[0]


def test_tensor_and_numpy_inputs_agree() -> None:
    x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float64)
    y = np.arange(40) % 2
    results = []
    for xs, ys in ((x, y), (torch.from_numpy(x), torch.from_numpy(y))):
        torch.manual_seed(0)
        model = build_model("mlp", arguments={"in_features": 3})
        results.append(fit_classifier(model, xs, ys, epochs=2, batch_size=16))
    assert results[0] == results[1]


def test_predict_logits_batches_and_restores_mode() -> None:
    torch.manual_seed(0)
    model = build_model("mlp", arguments={"in_features": 3, "dropout": 0.5})
    x = torch.randn(10, 3)
    full = predict_logits(model, x)
    batched = predict_logits(model, x.numpy(), batch_size=3)
    assert full.shape == (10, 2)
    assert full.dtype == torch.float32
    assert not full.requires_grad
    torch.testing.assert_close(full, batched)
    assert model.training  # restored after eval-mode prediction
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(full, model(x))


def test_seed_everything() -> None:
    seed_everything(11)
    first = (random.random(), np.random.rand(), torch.rand(1))
    seed_everything(11)
    assert (random.random(), np.random.rand(), torch.rand(1)) == first
    with pytest.raises(ConfigurationError, match="'seed' parameter of seed_everything"):
        seed_everything(-1)


# -- validation -------------------------------------------------------------------------------

X_OK = torch.zeros(4, 2)
Y_OK = torch.tensor([0, 1, 0, 1])


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (torch.zeros(4), Y_OK, "at least 2 dimensions"),
        (torch.zeros(0, 2), torch.zeros(0, dtype=torch.long), "x is empty"),
        (torch.full((4, 2), float("nan")), Y_OK, "x contains NaN in example 0"),
        (np.array([[1.0, np.inf]] * 4), Y_OK, "x contains an infinity in example 0"),
        (torch.zeros(4, 2, dtype=torch.complex64), Y_OK, "x must hold real numbers"),
        ([["a", "b"]] * 4, Y_OK, "array of dtype <U1"),
        (np.array([[object()]] * 4), Y_OK, "array of dtype object"),
        (X_OK, torch.zeros(4, 1, dtype=torch.long), "y must be 1-D"),
        (X_OK, torch.zeros(4), "y must hold integer class labels"),
        (X_OK, torch.tensor([0, -1, 0, 1]), "labels >= 0. Got the label -1"),
        (X_OK, torch.tensor([0, 1, 0]), "same number of samples. Got 4 and 3"),
    ],
)
def test_invalid_data(x: object, y: object, message: str) -> None:
    model = build_model("mlp", arguments={"in_features": 2})
    with pytest.raises(DataError, match=message):
        fit_classifier(model, x, y, epochs=1)  # type: ignore[arg-type]


def test_length_mismatch_message() -> None:
    model = build_model("mlp", arguments={"in_features": 2})
    with pytest.raises(DataError) as info:
        accuracy(model, X_OK, torch.tensor([0, 1]))
    assert str(info.value) == MSG_LENGTH_MISMATCH.format(n_x=4, n_y=2)


def test_label_without_a_logit() -> None:
    model = build_model("mlp", arguments={"in_features": 2})
    with pytest.raises(DataError) as info:
        fit_classifier(model, X_OK, torch.tensor([0, 1, 2, 1]), epochs=1)
    assert str(info.value) == MSG_TOO_FEW_CLASSES.format(label=2, n_classes=2, needed=3)


def test_model_must_return_2d_logits() -> None:
    with pytest.raises(DataError, match=r"logits of shape \(n_examples, n_classes\)"):
        predict_logits(nn.Flatten(0), torch.zeros(3, 2))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"epochs": 0}, "'epochs' parameter of fit_classifier must be an int >= 1. Got 0"),
        ({"epochs": 1.5}, "'epochs' parameter"),
        ({"epochs": 1, "lr": 0.0}, "'lr' parameter of fit_classifier must be a finite float > 0"),
        ({"epochs": 1, "lr": float("nan")}, "'lr' parameter"),
        ({"epochs": 1, "batch_size": 0}, "'batch_size' parameter"),
        ({"epochs": 1, "weight_decay": -1.0}, "'weight_decay' parameter .* >= 0"),
        ({"epochs": 1, "seed": 2**32}, "'seed' parameter"),
        ({"epochs": 1, "optimizer": "lbfgs"}, "must be one of 'adam', 'adamw', 'sgd'"),
    ],
)
def test_invalid_hyperparameters(arguments: dict[str, object], message: str) -> None:
    model = build_model("mlp", arguments={"in_features": 2})
    with pytest.raises(ConfigurationError, match=message):
        fit_classifier(model, X_OK, Y_OK, **arguments)  # type: ignore[arg-type]


def test_divergence_is_reported() -> None:
    model = build_model("mlp", arguments={"in_features": 2})
    x = torch.randn(32, 2) * 1e30
    with pytest.raises(ConfigurationError, match="lower the learning rate"):
        fit_classifier(model, x, torch.arange(32) % 2, epochs=3, lr=1e30, optimizer="sgd")


# -- the generic loop ----------------------------------------------------------------------------


def _tiny() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    x = torch.randn(20, 3)
    y = (x[:, 0] > 0).long()
    return model, x, y


def test_train_default_loss_and_history() -> None:
    from trustlab.core.training import train

    model, x, y = _tiny()
    history = train(model, data={"x": x, "y": y}, epochs=3, batch_size=8, seed=0, lr=0.1)
    assert history.epochs_run == 3 and history.steps == 9 and not history.stopped_early
    assert len(history.losses) == 3 and history.losses[-1] < history.losses[0]


def test_train_is_reproducible_and_keeps_the_mode() -> None:
    from trustlab.core.training import train

    weights = []
    for _ in range(2):
        model, x, y = _tiny()
        model.eval()
        train(model, data={"x": x, "y": y}, epochs=2, batch_size=4, seed=3)
        assert not model.training
        weights.append(model.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


def test_train_hooks_see_every_row_and_can_stop() -> None:
    from trustlab.core.training import Step, train

    model, x, y = _tiny()
    seen: list[int] = []
    weights = torch.linspace(0.5, 1.5, 20)

    def loss(step: Step) -> torch.Tensor:
        seen.extend(step.index.tolist())
        assert set(step.batch) == {"x", "y", "w"}
        losses = F.cross_entropy(step.model(step.batch["x"]), step.batch["y"], reduction="none")
        return (losses * step.batch["w"]).mean()

    history = train(
        model,
        data={"x": x, "y": y, "w": weights},
        epochs=5,
        batch_size=7,
        seed=0,
        loss=loss,
        after_epoch=lambda epoch, _: epoch == 2,
    )
    assert sorted(seen) == sorted(list(range(20)) * 2)
    assert history.epochs_run == 2 and history.stopped_early


def test_train_step_hook_and_rows() -> None:
    from trustlab.core.training import Step, train

    model, x, _ = _tiny()
    before = model.weight.detach().clone()
    rows_seen: set[int] = set()

    def step(info: Step) -> float:
        rows_seen.update(info.index.tolist())
        return 1.0

    history = train(
        model, data={"x": x}, epochs=1, batch_size=4, seed=0, step=step, rows=torch.arange(5)
    )
    assert rows_seen == set(range(5))
    assert history.losses == [1.0]
    assert torch.equal(model.weight, before)  # the step hook did no update


def test_train_after_step_stops_mid_epoch() -> None:
    from trustlab.core.training import train

    model, x, y = _tiny()
    history = train(
        model,
        data={"x": x, "y": y},
        epochs=3,
        batch_size=4,
        seed=0,
        after_step=lambda info: info.number == 1,
    )
    assert history.steps == 2 and history.epochs_run == 1 and history.stopped_early


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"data": {"y": torch.zeros(3)}}, DataError, "under the key 'x'"),
        ({"data": {"x": torch.zeros(3, 1), "y": torch.zeros(2)}}, DataError, "'y' has 2 rows"),
        ({"rows": torch.zeros(0, dtype=torch.long)}, DataError, "no rows to train on"),
        ({"epochs": 0}, ConfigurationError, "'epochs' parameter of train"),
        ({"loss": lambda s: s, "step": lambda s: 0.0}, ConfigurationError, "either loss= or step="),
    ],
)
def test_train_refuses(options: dict[str, object], error: type[Exception], message: str) -> None:
    from trustlab.core.training import train

    model, x, y = _tiny()
    arguments: dict[str, object] = {"data": {"x": x, "y": y}, "epochs": 1}
    arguments.update(options)
    with pytest.raises(error, match=message):
        train(model, batch_size=4, seed=0, **arguments)  # type: ignore[arg-type]


def test_train_reports_a_diverged_loss() -> None:
    from trustlab.core.training import train

    model, x, y = _tiny()
    with pytest.raises(ConfigurationError, match="became nan in epoch 1"):
        train(
            model,
            data={"x": x, "y": y},
            epochs=1,
            batch_size=4,
            seed=0,
            loss=lambda step: step.model(step.batch["x"]).sum() * float("nan"),
        )


def test_a_hook_that_stops_the_run_owns_a_diverged_loss() -> None:
    from trustlab.core.training import train

    model, x, y = _tiny()
    seen: list[float] = []
    history = train(
        model,
        data={"x": x, "y": y},
        epochs=2,
        batch_size=4,
        seed=0,
        loss=lambda step: step.model(step.batch["x"]).sum() * float("nan"),
        after_step=lambda step: True,  # e.g. a guard that restored a checkpoint
        after_epoch=lambda epoch, loss: seen.append(loss) is None and False,
    )
    assert history.stopped_early and history.steps == 1
    assert len(seen) == 1 and seen[0] != seen[0]  # NaN handed to the hook, no error


def test_a_model_that_cannot_run_on_x_gets_a_data_error() -> None:
    model = build_model("mlp", arguments={"in_features": 3})
    with pytest.raises(DataError, match=r"cannot run on inputs of shape \(n, 5\)"):
        predict_logits(model, torch.zeros(4, 5))


def test_poisson_sampling_draws_rows_independently_at_the_loaders_rate() -> None:
    from trustlab.core.training import Step, train

    model, x, _ = _tiny()
    sizes: list[int] = []

    def step(info: Step) -> float:
        sizes.append(len(info.index))
        return 0.0

    history = train(
        model, data={"x": x}, epochs=50, batch_size=6, seed=0, step=step, sampling="poisson"
    )
    assert history.steps == 50 * 4  # ceil(20 / 6) steps an epoch
    assert 4.0 < sum(sizes) / len(sizes) < 6.0  # 20 rows at rate 1/4: 5 rows on average
    assert len(set(sizes)) > 3  # the batch size varies

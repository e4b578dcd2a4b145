"""Tests of trustlab.privacy: the attack base class and the loss-threshold attack."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.metrics import auc
from trustlab.core.metrics.roc import MSG_MISSING_CLASS
from trustlab.core.params import MSG_PARAM
from trustlab.privacy import LossThresholdAttack, MembershipInferenceAttack
from trustlab.privacy.base import (
    MSG_LENGTH,
    MSG_LOGITS_SHAPE,
    MSG_X_NON_FINITE,
    MSG_Y_DTYPE,
    MSG_Y_RANGE,
)
from trustlab.privacy.loss_threshold import MSG_NOT_CALIBRATED

N_FEATURES, N_CLASSES, N_EACH = 10, 4, 64


class Setup:
    """An MLP overfitted to 64 members; 64 held-out non-members from the same distribution."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        # Synthetic task: a noisy linear teacher, so the labels are only partly learnable and a
        # model that fits its training set perfectly must memorise.
        x = torch.randn(2 * N_EACH, N_FEATURES, generator=generator)
        teacher = torch.randn(N_FEATURES, N_CLASSES, generator=generator)
        noise = 4.0 * torch.randn(2 * N_EACH, N_CLASSES, generator=generator)
        y = (x @ teacher + noise).argmax(dim=1)
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(N_FEATURES, 128), nn.ReLU(), nn.Linear(128, N_CLASSES))
        optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(300):
            optimiser.zero_grad()
            F.cross_entropy(model(x[:N_EACH]), y[:N_EACH]).backward()
            optimiser.step()
        self.model, self.x, self.y = model, x, y
        self.member = np.repeat([1, 0], N_EACH)


@pytest.fixture(scope="module")
def setup() -> Setup:
    return Setup()


def test_overfitted_model_leaks_membership(setup: Setup) -> None:
    train_accuracy = (setup.model(setup.x[:N_EACH]).argmax(dim=1) == setup.y[:N_EACH]).float()
    assert train_accuracy.mean() == 1.0
    scores = LossThresholdAttack().infer(model=setup.model, x=setup.x, y=setup.y)
    assert scores.shape == (2 * N_EACH,) and scores.dtype == np.float64
    assert (scores <= 0).all()
    assert auc(y_true=setup.member, scores=scores) > 0.7


def test_scores_are_negated_cross_entropy(setup: Setup) -> None:
    scores = LossThresholdAttack().infer(model=setup.model, x=setup.x, y=setup.y)
    with torch.no_grad():
        expected = -F.cross_entropy(setup.model(setup.x), setup.y, reduction="none")
    np.testing.assert_allclose(scores, expected.double().numpy(), rtol=1e-5, atol=1e-6)


def test_batching_numpy_and_logits_give_the_same_scores(setup: Setup) -> None:
    attack = LossThresholdAttack()
    reference = attack.infer(model=setup.model, x=setup.x, y=setup.y)
    batched = LossThresholdAttack(batch_size=7).infer(model=setup.model, x=setup.x, y=setup.y)
    np.testing.assert_allclose(batched, reference, rtol=1e-6, atol=1e-7)
    from_numpy = attack.infer(model=setup.model, x=setup.x.double().numpy(), y=setup.y.numpy())
    np.testing.assert_allclose(from_numpy, reference, rtol=1e-6, atol=1e-7)
    with torch.no_grad():
        logits = setup.model(setup.x)
    from_logits = attack.infer_from_logits(logits=logits, y=setup.y)
    np.testing.assert_allclose(from_logits, reference, rtol=1e-6, atol=1e-7)


def test_runs_in_eval_mode_and_restores_modes() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 8), nn.Dropout(0.5), nn.Linear(8, 2))
    model.train()
    model[0].eval()  # a mixed state must come back as it was
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    attack = LossThresholdAttack()
    first = attack.infer(model=model, x=x, y=y)
    second = attack.infer(model=model, x=x, y=y)
    np.testing.assert_array_equal(first, second)  # dropout off
    assert [m.training for m in model] == [False, True, True]
    assert model.training
    assert all(p.grad is None for p in model.parameters())


def test_calibrate_and_predict_membership(setup: Setup) -> None:
    attack = LossThresholdAttack()
    assert not hasattr(attack, "threshold_")
    returned = attack.calibrate(model=setup.model, x=setup.x, y=setup.y, member=setup.member)
    assert returned is attack
    assert np.isfinite(attack.threshold_)
    assert attack.balanced_accuracy_ > 0.7
    predicted = attack.predict_membership(model=setup.model, x=setup.x, y=setup.y)
    assert predicted.dtype == np.bool_ and predicted.shape == (2 * N_EACH,)
    member = setup.member.astype(bool)
    balanced = (predicted[member].mean() + (~predicted[~member]).mean()) / 2
    assert balanced == pytest.approx(attack.balanced_accuracy_)
    # No other loss threshold does better on the calibration set.
    losses = -attack.infer(model=setup.model, x=setup.x, y=setup.y)
    for t in losses:
        guess = losses <= t
        assert (guess[member].mean() + (~guess[~member]).mean()) / 2 <= balanced + 1e-12


def test_calibrate_accepts_bool_member(setup: Setup) -> None:
    attack = LossThresholdAttack().calibrate(
        model=setup.model, x=setup.x, y=setup.y, member=setup.member.astype(bool)
    )
    assert attack.balanced_accuracy_ > 0.7


def test_fixed_threshold_from_mean_training_loss(setup: Setup) -> None:
    attack = LossThresholdAttack()
    mean_train_loss = float(
        -attack.infer(model=setup.model, x=setup.x[:N_EACH], y=setup.y[:N_EACH]).mean()
    )
    yeom = LossThresholdAttack(threshold=mean_train_loss)
    predicted = yeom.predict_membership(model=setup.model, x=setup.x, y=setup.y)
    assert predicted[:N_EACH].mean() > predicted[N_EACH:].mean()


def test_predict_without_threshold_raises(setup: Setup) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(MSG_NOT_CALIBRATED)):
        LossThresholdAttack().predict_membership(model=setup.model, x=setup.x, y=setup.y)


@pytest.mark.parametrize("threshold", ["low", float("nan"), True])
def test_bad_threshold_is_rejected_at_construction(threshold: object) -> None:
    message = MSG_PARAM.format(
        name="threshold",
        owner="LossThresholdAttack",
        rule="None or a finite float",
        value=threshold,
    )
    with pytest.raises(ConfigurationError) as info:
        LossThresholdAttack(threshold=threshold)  # type: ignore[arg-type]
    assert str(info.value) == message
    assert LossThresholdAttack(threshold=2).threshold == 2.0


def test_length_mismatch(setup: Setup) -> None:
    message = MSG_LENGTH.format(first="x", second="y", n_first=128, n_second=127)
    with pytest.raises(DataError, match=re.escape(message)):
        LossThresholdAttack().infer(model=setup.model, x=setup.x, y=setup.y[:-1])
    message = MSG_LENGTH.format(first="x", second="member", n_first=128, n_second=4)
    with pytest.raises(DataError, match=re.escape(message)):
        LossThresholdAttack().calibrate(
            model=setup.model, x=setup.x, y=setup.y, member=[0, 1, 0, 1]
        )


@pytest.mark.parametrize("bad_label", [N_CLASSES, -1])
def test_label_out_of_range(setup: Setup, bad_label: int) -> None:
    y = setup.y.clone()
    y[5] = bad_label
    message = MSG_Y_RANGE.format(n_classes=N_CLASSES, value=bad_label, index=5)
    with pytest.raises(DataError, match=re.escape(message)):
        LossThresholdAttack().infer(model=setup.model, x=setup.x, y=y)


def test_float_labels_rejected(setup: Setup) -> None:
    with pytest.raises(DataError, match=re.escape(MSG_Y_DTYPE.format(dtype=torch.float32))):
        LossThresholdAttack().infer(model=setup.model, x=setup.x, y=setup.y.float())
    with pytest.raises(DataError, match=re.escape(MSG_Y_DTYPE.format(dtype=np.dtype("float64")))):
        LossThresholdAttack().infer(model=setup.model, x=setup.x, y=setup.y.double().numpy())


@pytest.mark.parametrize(("bad", "what"), [(float("nan"), "NaN"), (float("inf"), "an infinity")])
def test_non_finite_x_rejected(setup: Setup, bad: float, what: str) -> None:
    x = setup.x.clone()
    x[17, 3] = bad
    message = MSG_X_NON_FINITE.format(what=what, index=17)
    with pytest.raises(DataError, match=re.escape(message)):
        LossThresholdAttack().infer(model=setup.model, x=x, y=setup.y)
    with pytest.raises(DataError, match=re.escape(message)):
        LossThresholdAttack().infer(model=setup.model, x=x.numpy(), y=setup.y.numpy())


@pytest.mark.parametrize("batch_size", [0, -3, 2.0, True])
def test_bad_batch_size_is_rejected_at_construction(batch_size: object) -> None:
    message = MSG_PARAM.format(
        name="batch_size", owner="LossThresholdAttack", rule="an int >= 1", value=batch_size
    )
    with pytest.raises(ConfigurationError) as info:
        LossThresholdAttack(batch_size=batch_size)  # type: ignore[arg-type]
    assert str(info.value) == message


def test_model_with_wrong_output_shape() -> None:
    model = nn.Sequential(nn.Linear(3, 1), nn.Flatten(0))
    message = MSG_LOGITS_SHAPE.format(shape=(6,), n_examples=6)
    with pytest.raises(DataError, match=re.escape(message)):
        LossThresholdAttack().infer(
            model=model, x=torch.randn(6, 3), y=torch.zeros(6, dtype=torch.long)
        )


def test_member_needs_both_classes(setup: Setup) -> None:
    message = MSG_MISSING_CLASS.format(name="member", which="negative", label=0)
    with pytest.raises(DataError, match=re.escape(message)):
        LossThresholdAttack().calibrate(
            model=setup.model, x=setup.x, y=setup.y, member=np.ones(2 * N_EACH)
        )


def test_base_class_is_abstract() -> None:
    with pytest.raises(TypeError):
        MembershipInferenceAttack()  # type: ignore[abstract]
    assert isinstance(LossThresholdAttack(), MembershipInferenceAttack)


@pytest.mark.slow
def test_privacy_imports_only_core() -> None:
    code = (
        "import sys, trustlab.privacy; "
        "print('\\n'.join(m for m in sys.modules if m.startswith('trustlab')))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    loaded = result.stdout.split()
    assert "trustlab.privacy.loss_threshold" in loaded
    outside = [
        m
        for m in loaded
        if m != "trustlab" and not m.startswith(("trustlab.core", "trustlab.privacy"))
    ]
    assert outside == []

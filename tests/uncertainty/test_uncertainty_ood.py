"""OOD detectors (formulas, a conformance test over the registry, detection on a trained
model) and OOD metrics (against scikit-learn and by hand)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, roc_auc_score

from trustlab.core.errors import ConfigurationError
from trustlab.core.models import build_model
from trustlab.core.training import fit_classifier
from trustlab.uncertainty import (
    KNN,
    MSP,
    ODIN,
    OOD_DETECTORS,
    Energy,
    Mahalanobis,
    MaxLogit,
    aupr_in,
    aupr_out,
    auroc,
    fpr_at_tpr,
    model_outputs,
    ood_report,
)


@pytest.fixture(scope="module")
def blobs():
    """A small MLP trained on three Gaussian blobs; OOD inputs lie far from every blob."""
    rng = np.random.default_rng(0)
    centres = np.array([[4.0, 0, 0, 0], [0, 4.0, 0, 0], [0, 0, 4.0, 0]], dtype=np.float32)
    y = rng.integers(0, 3, 600)
    x = (centres[y] + rng.normal(size=(600, 4))).astype(np.float32)
    x_ood = (rng.normal(size=(200, 4)) * 0.5 + np.array([0, 0, 0, 12.0])).astype(np.float32)
    torch.manual_seed(0)
    model = build_model("mlp", arguments={"in_features": 4, "num_classes": 3})
    fit_classifier(model, x[:400], y[:400], epochs=15, batch_size=64, seed=0)
    return model, x[:400], y[:400], x[400:], x_ood


def test_logit_scores_by_formula() -> None:
    logits = torch.tensor([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(
        MSP().score_outputs(logits=logits), -torch.softmax(logits, 1).max(1).values.double()
    )
    np.testing.assert_allclose(MaxLogit().score_outputs(logits=logits), [-3.0, 0.0])
    np.testing.assert_allclose(
        Energy(temperature=2.0).score_outputs(logits=logits),
        (-2.0 * torch.logsumexp(logits.double() / 2.0, 1)).numpy(),
    )
    np.testing.assert_allclose(
        ODIN(temperature=10.0, eps=0.0).score_outputs(logits=logits),
        -torch.softmax(logits.double() / 10.0, 1).max(1).values.numpy(),
    )


def test_mahalanobis_matches_the_numpy_formula() -> None:
    rng = np.random.default_rng(1)
    feats = rng.normal(size=(300, 5)) + np.repeat(np.eye(5)[:3] * 3, 100, axis=0)
    y = np.repeat([0, 1, 2], 100)
    detector = Mahalanobis().fit_outputs(features=feats, y=y)
    means = np.stack([feats[y == k].mean(0) for k in range(3)])
    centred = feats - means[y]
    precision = np.linalg.pinv(centred.T @ centred / len(feats))
    test = rng.normal(size=(20, 5))
    expected = np.min(
        [np.einsum("nd,de,ne->n", test - m, precision, test - m) for m in means], axis=0
    )
    np.testing.assert_allclose(detector.score_outputs(features=test), expected, rtol=1e-8)


def test_knn_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    bank, test = rng.normal(size=(50, 3)), rng.normal(size=(7, 3))
    detector = KNN(k=4).fit_outputs(features=bank)
    normed = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    t = test / np.linalg.norm(test, axis=1, keepdims=True)
    distances = np.linalg.norm(t[:, None] - normed[None], axis=2)
    np.testing.assert_allclose(
        detector.score_outputs(features=test), np.sort(distances, 1)[:, 3], rtol=1e-9
    )
    with pytest.raises(ConfigurationError, match="fit on at least k examples"):
        KNN(k=60).fit_outputs(features=bank)


@pytest.mark.slow
def test_model_outputs_take_the_input_of_the_last_linear_layer(blobs) -> None:
    model = blobs[0]
    out = model_outputs(model=model, x=blobs[1][:5])
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    assert out.features.shape == (5, last.in_features)
    np.testing.assert_allclose(
        last(out.features).detach().numpy(), out.logits.numpy(), rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ConfigurationError, match="no submodule 'nope'"):
        model_outputs(model=model, x=blobs[1][:5], layer="nope")


@pytest.mark.slow
@pytest.mark.parametrize("name", OOD_DETECTORS.names())
def test_every_detector_fits_scores_and_separates_far_inputs(name: str, blobs) -> None:
    model, x_fit, y_fit, x_in, x_ood = blobs
    options = {"k": 5} if name == "knn" else {}
    detector = OOD_DETECTORS.build(name, options)
    if detector.needs_fit:
        with pytest.raises(ConfigurationError, match="not fitted yet"):
            detector.score(model=model, x=x_in)
    assert detector.fit(model=model, x=x_fit, y=y_fit) is detector
    scores_in = detector.score(model=model, x=x_in)
    scores_out = detector.score(model=model, x=x_ood)
    assert scores_in.dtype == np.float64 and scores_in.shape == (len(x_in),)
    assert np.isfinite(scores_in).all() and np.isfinite(scores_out).all()
    labels = np.r_[np.zeros(len(x_in)), np.ones(len(x_ood))]
    if name in ("mahalanobis", "knn", "energy", "maxlogit"):
        assert auroc(is_ood=labels, scores=np.r_[scores_in, scores_out]) > 0.9


@pytest.mark.slow
def test_odin_step_raises_in_distribution_confidence(blobs) -> None:
    model, _, _, x_in, _ = blobs
    plain = ODIN(temperature=1.0, eps=0.0).score(model=model, x=x_in)
    stepped = ODIN(temperature=1.0, eps=0.05).score(model=model, x=x_in)
    assert stepped.mean() < plain.mean()  # more confident: lower outlier score
    with pytest.raises(ConfigurationError, match="needs the model"):
        ODIN().score_outputs(logits=np.zeros((1, 3)))


@pytest.mark.slow
def test_mahalanobis_input_step_runs_on_the_model(blobs) -> None:
    model, x_fit, y_fit, x_in, _ = blobs
    detector = Mahalanobis(eps=0.01).fit(model=model, x=x_fit, y=y_fit)
    scores = detector.score(model=model, x=x_in)
    assert scores.shape == (len(x_in),) and np.isfinite(scores).all()


def test_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    labels = np.r_[np.zeros(300), np.ones(200)].astype(int)
    scores = rng.normal(size=500) + labels
    assert auroc(is_ood=labels, scores=scores) == pytest.approx(roc_auc_score(labels, scores))
    assert aupr_out(is_ood=labels, scores=scores) == pytest.approx(
        average_precision_score(labels, scores)
    )
    assert aupr_in(is_ood=labels, scores=scores) == pytest.approx(
        average_precision_score(1 - labels, -scores)
    )


def test_fpr_at_tpr_by_hand() -> None:
    labels = np.r_[np.zeros(20), np.ones(10)].astype(int)
    scores = np.r_[np.arange(20.0), np.arange(10.0) + 14.5]
    # 95% of 20 ID examples: the 19 lowest (scores 0..18) are accepted at threshold 18;
    # the OOD scores 14.5..18.5 below it: 14.5, 15.5, 16.5, 17.5 -> 4 of 10.
    assert fpr_at_tpr(is_ood=labels, scores=scores) == pytest.approx(0.4)
    with pytest.raises(ConfigurationError, match="'tpr' parameter"):
        fpr_at_tpr(is_ood=labels, scores=scores, tpr=1.0)


def test_report_has_every_metric_with_an_interval() -> None:
    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1], 100)
    report = ood_report(is_ood=labels, scores=rng.normal(size=200) + labels, n_resamples=50)
    assert set(report) == {"auroc", "aupr_in", "aupr_out", "fpr@95"}
    assert report["auroc"].low <= report["auroc"].high

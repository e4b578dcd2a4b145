"""The tabular architecture: piecewise-linear encodings, bins, the ensemble and its training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trustlab.core.errors import ConfigurationError, DataError
from trustlab.core.models import TabularNet, build_model, fit_tabular
from trustlab.core.models.tabular import piecewise_linear_encoding
from trustlab.core.seeding import seed_everything
from trustlab.core.training import predict_logits


def _net(**arguments: object) -> TabularNet:
    seed_everything(0)
    base: dict[str, object] = {"in_features": 4, "numeric_features": [0, 1], "width": 8}
    model = build_model("tabular", arguments={**base, **arguments})
    assert isinstance(model, TabularNet)
    return model


def test_piecewise_linear_encoding_follows_the_paper() -> None:
    edges = torch.tensor([[0.0, 1.0, 2.0, 4.0]])
    x = torch.tensor([[-1.0], [0.5], [1.5], [3.0], [5.0]])
    encoded = piecewise_linear_encoding(x, edges)[:, 0, :]
    expected = torch.tensor(
        [
            [-1.0, 0.0, 0.0],  # below the range: the first bin keeps its slope
            [0.5, 0.0, 0.0],
            [1.0, 0.5, 0.0],
            [1.0, 1.0, 0.5],
            [1.0, 1.0, 1.5],  # above the range: the last bin keeps its slope
        ]
    )
    assert torch.allclose(encoded, expected)


def test_zero_width_bins_are_steps() -> None:
    edges = torch.tensor([[0.0, 0.0, 1.0]])
    encoded = piecewise_linear_encoding(torch.tensor([[-0.5], [0.0], [0.5]]), edges)[:, 0, :]
    assert encoded[:, 0].tolist() == [0.0, 1.0, 1.0]
    assert encoded[:, 1].tolist() == [0.0, 0.0, 0.5]


def test_bin_edges_come_from_the_training_rows_and_keep_resolution_on_spikes() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 4)).astype(np.float32)
    x[:450, 1] = 0.0  # a column that is mostly zero, like capital gains
    net = _net(n_bins=8)
    net.set_bin_edges(x)
    edges = net.bin_edges.numpy()
    assert edges.shape == (2, 9)
    assert np.all(np.diff(edges, axis=1) >= 0)
    assert edges[0, 0] == pytest.approx(x[:, 0].min()) and edges[0, -1] == pytest.approx(
        x[:, 0].max()
    )
    assert len(np.unique(edges[1])) >= 6  # not collapsed onto the spike at 0
    net.set_bin_edges(x, y=(x[:, 0] > 0.3).astype(int))
    assert np.any(np.isclose(net.bin_edges[0].numpy(), 0.3, atol=0.1))  # the tree finds the cut


def test_default_bins_give_every_value_of_a_discrete_column_its_own_edge() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 4)).astype(np.float32)
    x[:, 1] = rng.integers(0, 120, 2000)  # integer-valued, like Adult's capital gains
    x[:1800, 1] = 0.0
    net = _net()
    net.set_bin_edges(x)
    assert set(np.unique(x[:, 1])) <= set(net.bin_edges[1].numpy().tolist())


@pytest.mark.slow
def test_fine_bins_learn_the_effect_of_single_values() -> None:
    # The label depends on two exact values of an integer column, as income does on a few
    # exact capital-gain amounts: with an edge at every value, each is a feature of its own.
    rng = np.random.default_rng(1)
    x = np.zeros((1200, 4), dtype=np.float32)
    x[:, 0] = rng.integers(0, 40, 1200)
    y = np.isin(x[:, 0], [7, 23]).astype(np.int64)
    net = _net(n_blocks=1, width=16)
    fit_tabular(net, x=x, y=y, epochs=25, patience=25, lr=1e-2, batch_size=100)
    predictions = predict_logits(net, x).argmax(dim=1).numpy()
    assert np.mean(predictions[y == 1] == 1) > 0.95
    assert np.mean(predictions[y == 0] == 0) > 0.99


def test_the_ensemble_averages_member_probabilities() -> None:
    net = _net(n_members=3)
    x = torch.randn(5, 4)
    net.eval()
    members = torch.softmax(net.member_logits(x), dim=-1).mean(dim=0)
    assert torch.allclose(torch.softmax(net(x), dim=-1), members, atol=1e-6)


def test_bin_edges_travel_with_the_state_dict() -> None:
    net = _net()
    net.set_bin_edges(torch.randn(50, 4) * 3)
    rebuilt = build_model("tabular", arguments=net.trustlab_architecture["arguments"])
    rebuilt.load_state_dict(net.state_dict())
    x = torch.randn(6, 4)
    net.eval(), rebuilt.eval()
    assert torch.equal(net(x), rebuilt(x))


def test_bad_arguments_fail_with_the_rule() -> None:
    with pytest.raises(ConfigurationError, match="numeric_features"):
        build_model("tabular", arguments={"in_features": 3, "numeric_features": [3]})
    with pytest.raises(ConfigurationError, match="numeric_features"):
        build_model("tabular", arguments={"in_features": 3, "numeric_features": [1, 1]})
    with pytest.raises(DataError, match="set_bin_edges"):
        _net().set_bin_edges(torch.zeros(10, 3))


@pytest.mark.slow
def test_fit_tabular_learns_stops_early_and_keeps_the_best_epoch() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)).astype(np.float32)
    y = ((x[:, 0] > 0) ^ (x[:, 2] > 0.5)).astype(np.int64)
    x[:, 2] = (x[:, 2] > 0.5).astype(np.float32)  # an indicator column
    net = _net(n_members=2)
    report = fit_tabular(net, x=x, y=y, epochs=40, patience=3, lr=5e-3, batch_size=64)
    assert len(report.members) == 2
    for member in report.members:
        assert member.best_loss == min(member.validation_losses)
        assert member.epochs_run <= 40 and member.best_epoch <= member.epochs_run
    accuracy = (predict_logits(net, x).argmax(1).numpy() == y).mean()
    assert accuracy > 0.9
    assert len(report.validation_rows) == 60


def test_fit_tabular_checks_weights_and_validation_pairs() -> None:
    x, y = np.zeros((20, 4), dtype=np.float32), np.arange(20) % 2
    with pytest.raises(DataError, match="sample_weight"):
        fit_tabular(_net(), x=x, y=y, sample_weight=-np.ones(20), epochs=1)
    with pytest.raises(DataError, match="x_val and y_val"):
        fit_tabular(_net(), x=x, y=y, x_val=x, epochs=1)
    with pytest.raises(ConfigurationError, match="binning"):
        fit_tabular(_net(), x=x, y=y, binning="trees", epochs=1)


@pytest.mark.slow
def test_sample_weights_steer_the_fit() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    y = np.zeros(300, dtype=np.int64)
    y[:150] = 1  # labels unrelated to x; the weights decide which class wins
    weights = np.where(y == 1, 5.0, 1.0)
    net = _net()
    fit_tabular(net, x=x, y=y, sample_weight=weights, epochs=5, patience=5, batch_size=50)
    assert predict_logits(net, x).argmax(1).float().mean() > 0.9


def test_periodic_encoding_has_trainable_frequencies_per_member() -> None:
    net = _net(frequency_scale=0.5, n_bins=4, n_members=2)
    frequencies = [member.frequencies for member in net.members]
    assert all(f is not None and f.shape == (2, 4) for f in frequencies)
    assert not torch.equal(frequencies[0], frequencies[1])  # each member draws its own
    x = torch.randn(5, 4)
    net.eval()
    out = net(x)
    assert out.shape == (5, 2) and torch.isfinite(out).all()
    out.sum().backward()
    assert frequencies[0].grad is not None and frequencies[0].grad.abs().sum() > 0
    with pytest.raises(ConfigurationError, match="frequency_scale"):
        _net(frequency_scale=-1.0)

"""Output defences change outputs exactly as documented."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from extraction_helpers import DigitsSplit
from torch import nn

from trustlab.core.errors import ConfigurationError, DataError, UnknownNameError
from trustlab.core.params import MSG_PARAM
from trustlab.extraction.defences import (
    AdditiveNoise,
    Chain,
    EmbeddingTransform,
    OutputDefence,
    ReverseSigmoid,
    Rounding,
    TopK,
    build_defence,
    chain,
)
from trustlab.extraction.defences.embedding_transform import MSG_DIM_TOO_SMALL


@pytest.fixture(scope="module")
def probs(victim: nn.Module, digits: DigitsSplit) -> torch.Tensor:
    with torch.no_grad():
        return F.softmax(victim(digits.x_test[:200]), dim=1)


def test_rounding_rounds_each_value_to_the_decimals(probs: torch.Tensor) -> None:
    out = Rounding(decimals=2).apply(outputs=probs, inputs=torch.zeros(200, 1), client_id="a")
    assert out.shape == probs.shape and out.dtype == probs.dtype
    # Every value is a multiple of 0.01 within float32 precision, and within half a step.
    assert torch.allclose(out * 100, torch.round(out * 100), atol=1e-4)
    assert float((out - probs).abs().max()) <= 0.005 + 1e-6
    hand = torch.tensor([[0.1234, 0.8766], [0.0051, 0.9949]])
    expected = torch.tensor([[0.12, 0.88], [0.01, 0.99]])
    got = Rounding(decimals=2).apply(outputs=hand, inputs=torch.zeros(2, 1), client_id="a")
    assert torch.allclose(got, expected)
    coarse = Rounding(decimals=0).apply(outputs=hand, inputs=torch.zeros(2, 1), client_id="a")
    assert torch.equal(coarse, torch.tensor([[0.0, 1.0], [0.0, 1.0]]))


def test_top_k_keeps_the_k_largest_and_zeros_the_rest(probs: torch.Tensor) -> None:
    inputs = torch.zeros(200, 1)
    out = TopK(k=3).apply(outputs=probs, inputs=inputs, client_id="a")
    assert torch.equal((out > 0).sum(dim=1), torch.full((200,), 3))
    top = probs.topk(3, dim=1)
    assert torch.equal(out.gather(1, top.indices), top.values)  # kept values unchanged
    assert torch.equal(out.argmax(dim=1), probs.argmax(dim=1))
    renormalised = TopK(k=3, renormalise=True).apply(outputs=probs, inputs=inputs, client_id="a")
    assert torch.allclose(renormalised.sum(dim=1), torch.ones(200))
    assert torch.allclose(renormalised, out / out.sum(dim=1, keepdim=True))
    # Ties go to the lower class index; k larger than the number of classes keeps everything.
    tie = torch.tensor([[0.4, 0.4, 0.2]])
    assert torch.equal(
        TopK(k=1).apply(outputs=tie, inputs=torch.zeros(1, 1), client_id="a"),
        torch.tensor([[0.4, 0.0, 0.0]]),
    )
    assert torch.equal(TopK(k=5).apply(outputs=tie, inputs=torch.zeros(1, 1), client_id="a"), tie)


def test_additive_noise_keeps_probabilities_valid_and_is_keyed(
    probs: torch.Tensor, digits: DigitsSplit
) -> None:
    inputs = digits.x_test[:200]
    noise = AdditiveNoise(scale=0.05, seed=3)
    out = noise.apply(outputs=probs, inputs=inputs, client_id="team-a")
    assert bool((out >= 0).all())
    assert torch.allclose(out.sum(dim=1), torch.ones(200), atol=1e-5)
    assert not torch.allclose(out, probs, atol=1e-3)
    # Top-1 is mostly kept for a confident victim and a small scale.
    assert float((out.argmax(1) == probs.argmax(1)).float().mean()) > 0.9
    # Same (seed, client, input) -> same answer, also row by row; another client or seed differs.
    again = noise.apply(outputs=probs, inputs=inputs, client_id="team-a")
    assert torch.equal(out, again)
    single = noise.apply(outputs=probs[5:6], inputs=inputs[5:6], client_id="team-a")
    assert torch.equal(single, out[5:6])
    other = noise.apply(outputs=probs, inputs=inputs, client_id="team-b")
    assert not torch.allclose(out, other)
    reseeded = AdditiveNoise(scale=0.05, seed=4).apply(
        outputs=probs, inputs=inputs, client_id="team-a"
    )
    assert not torch.allclose(out, reseeded)


def test_additive_noise_has_the_requested_scale_on_embeddings() -> None:
    embeddings = torch.zeros(400, 16)
    inputs = torch.arange(400, dtype=torch.float32)[:, None]
    out = AdditiveNoise(scale=0.5, probabilities=False).apply(
        outputs=embeddings, inputs=inputs, client_id="a"
    )
    assert abs(float(out.std()) - 0.5) < 0.02
    assert abs(float(out.mean())) < 0.02


def reverse_sigmoid_by_hand(p: list[float], beta: float, gamma: float) -> list[float]:
    perturbed = []
    for value in p:
        clipped = min(max(value, 1e-9), 1 - 1e-9)
        logit = math.log(clipped / (1 - clipped))
        r = beta * (1 / (1 + math.exp(-gamma * logit)) - 0.5)
        perturbed.append(min(max(value - r, 0.0), 1.0))
    total = sum(perturbed)
    return [v / total for v in perturbed]


def test_reverse_sigmoid_matches_the_formula_by_hand() -> None:
    rows = [[0.7, 0.2, 0.1], [0.05, 0.9, 0.05], [0.34, 0.33, 0.33]]
    out = ReverseSigmoid(beta=0.3, gamma=0.4).apply(
        outputs=torch.tensor(rows, dtype=torch.float64), inputs=torch.zeros(3, 1), client_id="a"
    )
    for row, got in zip(rows, out.tolist(), strict=True):
        assert got == pytest.approx(reverse_sigmoid_by_hand(row, 0.3, 0.4), abs=1e-12)


def test_reverse_sigmoid_keeps_the_label_but_changes_probabilities(probs: torch.Tensor) -> None:
    for beta, gamma in [(0.5, 0.5), (2.0, 2.0), (5.0, 1.0)]:
        out = ReverseSigmoid(beta=beta, gamma=gamma).apply(
            outputs=probs, inputs=torch.zeros(200, 1), client_id="a"
        )
        assert torch.equal(out.argmax(dim=1), probs.argmax(dim=1))
        assert torch.allclose(out.sum(dim=1), torch.ones(200), atol=1e-5)
        assert bool((out >= 0).all())
        assert float((out - probs).abs().sum(dim=1).mean()) > 0.05


def test_reverse_sigmoid_restores_the_label_where_the_formula_would_flip_it() -> None:
    row = [0.5, 0.45, 0.05]
    by_hand = reverse_sigmoid_by_hand(row, 3.0, 3.0)
    assert max(range(3), key=lambda i: by_hand[i]) != 0  # the paper's formula flips it here
    out = ReverseSigmoid(beta=3.0, gamma=3.0).apply(
        outputs=torch.tensor([row]), inputs=torch.zeros(1, 1), client_id="a"
    )
    assert int(out.argmax()) == 0
    assert sorted(out[0].tolist()) == pytest.approx(sorted(by_hand), abs=1e-6)


def test_embedding_transform_differs_between_clients_and_is_stable() -> None:
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(50, 12, generator=generator)
    inputs = torch.zeros(50, 1)
    defence = EmbeddingTransform(secret="course-secret")
    a = defence.apply(outputs=embeddings, inputs=inputs, client_id="team-a")
    b = defence.apply(outputs=embeddings, inputs=inputs, client_id="team-b")
    assert not torch.allclose(a, b, atol=1e-2)
    # Stable: a fresh instance with the same secret gives bit-identical answers.
    again = EmbeddingTransform(secret="course-secret").apply(
        outputs=embeddings, inputs=inputs, client_id="team-a"
    )
    assert torch.equal(a, again)
    other_secret = EmbeddingTransform(secret="another").apply(
        outputs=embeddings, inputs=inputs, client_id="team-a"
    )
    assert not torch.allclose(a, other_secret, atol=1e-2)


@pytest.mark.parametrize("dim", [None, 20])
def test_embedding_transform_scales_every_distance_by_the_same_factor(dim: int | None) -> None:
    embeddings = torch.randn(
        40, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    defence = EmbeddingTransform(secret="s", dim=dim)
    out = defence.apply(outputs=embeddings, inputs=torch.zeros(40, 1), client_id="team-a")
    assert out.shape == (40, dim or 12)
    mask = ~torch.eye(40, dtype=torch.bool)
    ratio = (torch.cdist(out, out) / torch.cdist(embeddings, embeddings).clamp_min(1e-12))[mask]
    transform = defence.transform_for(client_id="team-a", d=12)
    assert torch.allclose(ratio, torch.full_like(ratio, transform.scale), rtol=1e-9)
    assert 0.5 <= transform.scale < 2.0
    rotation = torch.from_numpy(transform.rotation)
    assert torch.allclose(rotation @ rotation.T, torch.eye(12, dtype=torch.float64), atol=1e-12)
    expected = transform.scale * embeddings @ rotation + torch.from_numpy(transform.shift)
    assert torch.allclose(out, expected)


def test_embedding_transform_refuses_a_smaller_dimension() -> None:
    with pytest.raises(DataError) as error:
        EmbeddingTransform(secret="s", dim=4).apply(
            outputs=torch.randn(3, 8), inputs=torch.zeros(3, 1), client_id="a"
        )
    assert str(error.value) == MSG_DIM_TOO_SMALL.format(dim=4, d=8)


def test_chain_applies_defences_in_order(probs: torch.Tensor) -> None:
    inputs = torch.zeros(200, 1)
    composed = chain([TopK(k=2), Rounding(decimals=1)])
    assert isinstance(composed, Chain)
    by_hand = Rounding(decimals=1).apply(
        outputs=TopK(k=2).apply(outputs=probs, inputs=inputs, client_id="a"),
        inputs=inputs,
        client_id="a",
    )
    assert torch.equal(composed.apply(outputs=probs, inputs=inputs, client_id="a"), by_hand)
    assert torch.equal(Chain().apply(outputs=probs, inputs=inputs, client_id="a"), probs)
    assert Chain(Rounding(), EmbeddingTransform(secret="s")).probabilities_only is False
    assert Chain(Rounding(), TopK()).probabilities_only is True


def test_chain_is_built_from_names_and_options(probs: torch.Tensor) -> None:
    inputs = torch.zeros(200, 1)
    specs = [
        {"name": "top-k", "options": {"k": 2}},
        {"name": "rounding", "options": {"decimals": 1}},
    ]
    built = build_defence("chain", {"defences": specs})
    assert repr(built) == repr(chain([TopK(k=2), Rounding(decimals=1)]))
    assert repr(build_defence({"name": "chain", "options": {"defences": ["top-k"]}})) == repr(
        Chain(TopK())
    )
    expected = chain([TopK(k=2), Rounding(decimals=1)]).apply(
        outputs=probs, inputs=inputs, client_id="a"
    )
    assert torch.equal(built.apply(outputs=probs, inputs=inputs, client_id="a"), expected)


def test_build_defence_refuses_unknown_names_options_and_malformed_specs() -> None:
    with pytest.raises(UnknownNameError, match="Unknown output defence 'blur'"):
        build_defence("blur")
    with pytest.raises(ConfigurationError, match="Unknown option\\(s\\) 'digits'"):
        build_defence("rounding", {"digits": 2})
    with pytest.raises(ConfigurationError, match="registered name or as a mapping"):
        build_defence({"kind": "rounding"})
    with pytest.raises(ConfigurationError, match="got options twice"):
        build_defence({"name": "rounding", "options": {}}, {"decimals": 1})
    with pytest.raises(ConfigurationError, match="'defences' parameter of chain"):
        build_defence("chain", {"defences": "rounding"})


def rule_message(name: str, owner: str, rule: str, value: object) -> str:
    return MSG_PARAM.format(name=name, owner=owner, rule=rule, value=value)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: Rounding(decimals=-1),
            rule_message("decimals", "Rounding", "an int >= 0", -1),
        ),
        (lambda: TopK(k=0), rule_message("k", "TopK", "an int >= 1", 0)),
        (lambda: TopK(renormalise=1), rule_message("renormalise", "TopK", "a bool", 1)),
        (
            lambda: AdditiveNoise(scale=-1.0),
            rule_message("scale", "AdditiveNoise", "a finite float > 0", -1.0),
        ),
        (
            lambda: AdditiveNoise(scale=0.1, seed=-2),
            rule_message("seed", "AdditiveNoise", "an int in [0, 4294967295]", -2),
        ),
        (
            lambda: ReverseSigmoid(beta=0.0, gamma=1.0),
            rule_message("beta", "ReverseSigmoid", "a finite float > 0", 0.0),
        ),
        (
            lambda: ReverseSigmoid(beta=1.0, gamma=float("nan")),
            rule_message("gamma", "ReverseSigmoid", "a finite float > 0", float("nan")),
        ),
        (
            lambda: EmbeddingTransform(secret=""),
            rule_message("secret", "EmbeddingTransform", "a non-empty str", ""),
        ),
        (
            lambda: EmbeddingTransform(secret="s", dim=0),
            rule_message("dim", "EmbeddingTransform", "None or an int >= 1", 0),
        ),
        (
            lambda: Chain(Rounding, TopK()),  # type: ignore[arg-type]
            rule_message(
                "defences",
                "Chain",
                "OutputDefence instances (e.g. Rounding(decimals=2)), not classes or names",
                (Rounding, TopK()),
            ),
        ),
    ],
)
def test_bad_parameters_fail_at_construction(
    make: Callable[[], OutputDefence], message: str
) -> None:
    with pytest.raises(ConfigurationError) as error:
        make()
    assert str(error.value) == message


def test_bad_batches_raise_a_data_error() -> None:
    inputs = torch.zeros(2, 1)
    with pytest.raises(DataError, match="works on probability vectors"):
        TopK().apply(outputs=torch.tensor([[2.0, -1.0]] * 2), inputs=inputs, client_id="a")
    with pytest.raises(DataError, match="NaN or infinite"):
        Rounding().apply(
            outputs=torch.tensor([[0.5, float("nan")]] * 2), inputs=inputs, client_id="a"
        )
    with pytest.raises(DataError, match="one row per output row"):
        Rounding().apply(outputs=torch.rand(3, 2), inputs=inputs, client_id="a")
    with pytest.raises(DataError, match="shape \\(n_queries, n_outputs\\)"):
        Rounding().apply(outputs=torch.rand(2), inputs=inputs, client_id="a")
    with pytest.raises(DataError, match="client_id must be a non-empty str"):
        Rounding().apply(outputs=torch.rand(2, 2), inputs=inputs, client_id="")

"""The architecture registry, build_model's argument checks, and every registered model."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from trustlab.core.errors import ConfigurationError, DuplicateNameError, UnknownNameError
from trustlab.core.models import (
    ARCHITECTURES,
    MLP,
    DigitsCNN,
    ResNet18,
    build_model,
    list_architectures,
    register_architecture,
)
from trustlab.core.models._base import (
    MSG_MISSING_ARGUMENTS,
    MSG_NOT_KEYWORD_ONLY,
    MSG_UNKNOWN_ARGUMENTS,
)

# A small input for each registered architecture, so the conformance test covers them all.
EXAMPLES: dict[str, tuple[dict[str, object], tuple[int, ...]]] = {
    "digits-cnn": ({}, (2, 1, 8, 8)),
    "canvas-cnn": ({}, (2, 1, 24, 24)),
    "mlp": ({"in_features": 5}, (2, 5)),
    "resnet18": ({"num_classes": 4}, (2, 3, 16, 16)),
    "tabular": ({"in_features": 5, "numeric_features": [0, 1]}, (2, 5)),
}


def test_builtin_architectures_are_registered() -> None:
    assert list_architectures() == ["canvas-cnn", "digits-cnn", "mlp", "resnet18", "tabular"]
    assert ARCHITECTURES.get("digits-cnn") is DigitsCNN
    assert ARCHITECTURES.get("mlp") is MLP
    assert ARCHITECTURES.get("resnet18") is ResNet18


@pytest.mark.parametrize("name", list_architectures())
def test_every_architecture_builds_records_and_returns_logits(name: str) -> None:
    arguments, input_shape = EXAMPLES[name]
    model = build_model(name, arguments=arguments)
    record = model.trustlab_architecture
    assert record["name"] == name
    assert json.loads(json.dumps(record)) == record  # storable as JSON
    rebuilt = build_model(name, arguments=record["arguments"])
    assert rebuilt.trustlab_architecture == record
    model.eval()
    logits = model(torch.zeros(input_shape))
    num_classes = record["arguments"]["num_classes"]
    assert logits.shape == (input_shape[0], num_classes)


def test_defaults_are_recorded() -> None:
    assert build_model("digits-cnn").trustlab_architecture == {
        "name": "digits-cnn",
        "arguments": {"in_channels": 1, "num_classes": 10},
    }
    assert build_model("mlp", arguments={"in_features": 3}).trustlab_architecture == {
        "name": "mlp",
        "arguments": {"dropout": 0.0, "hidden": [64, 64], "in_features": 3, "num_classes": 2},
    }
    assert build_model("resnet18").trustlab_architecture["arguments"] == {
        "in_channels": 3,
        "num_classes": 10,
    }


def test_tuples_are_recorded_as_lists() -> None:
    model = build_model("mlp", arguments={"in_features": 3, "hidden": (4, 5)})
    assert model.trustlab_architecture["arguments"]["hidden"] == [4, 5]
    assert [layer.out_features for layer in model.hidden] == [4, 5]


def test_unknown_argument_is_named_with_the_accepted_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        build_model("digits-cnn", arguments={"num_clases": 3, "depth": 2})
    assert str(info.value) == MSG_UNKNOWN_ARGUMENTS.format(
        unknown="depth, num_clases", name="digits-cnn", accepted="in_channels, num_classes"
    )


def test_missing_required_argument() -> None:
    with pytest.raises(ConfigurationError) as info:
        build_model("mlp")
    assert str(info.value) == MSG_MISSING_ARGUMENTS.format(
        missing="in_features", name="mlp", accepted="dropout, hidden, in_features, num_classes"
    )


@pytest.mark.parametrize(
    "value", [{"a": 1}, float("nan"), float("inf"), torch.ones(1), object(), [1, {"a": 2}]]
)
def test_arguments_must_be_json_scalars_or_lists(value: object) -> None:
    with pytest.raises(ConfigurationError, match="JSON scalar"):
        build_model("mlp", arguments={"in_features": 3, "hidden": value})


def test_arguments_must_be_a_mapping() -> None:
    with pytest.raises(ConfigurationError, match="must be a mapping"):
        build_model("mlp", arguments=[("in_features", 3)])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("name", "arguments", "message"),
    [
        ("digits-cnn", {"num_classes": 0}, "'num_classes' parameter of digits-cnn must be an int"),
        ("digits-cnn", {"num_classes": True}, "must be an int >= 1"),
        ("resnet18", {"in_channels": 2.0}, "'in_channels' parameter of resnet18"),
        ("mlp", {"in_features": 3, "dropout": 1.0}, "'dropout' parameter of mlp"),
        ("mlp", {"in_features": 3, "hidden": [4, 0]}, "'hidden' parameter of mlp"),
        ("mlp", {"in_features": 3, "hidden": 4}, "'hidden' parameter of mlp"),
    ],
)
def test_invalid_values(name: str, arguments: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        build_model(name, arguments=arguments)


def test_unknown_architecture_lists_known_ones() -> None:
    known = "Known architectures: canvas-cnn, digits-cnn, mlp, resnet18"
    with pytest.raises(UnknownNameError, match=known):
        build_model("vgg16")


def test_register_refuses_duplicates() -> None:
    with pytest.raises(DuplicateNameError):
        register_architecture("mlp")(MLP)


def test_register_refuses_positional_parameters() -> None:
    def factory(width: int = 3) -> nn.Module:
        return nn.Linear(width, 1)

    with pytest.raises(ConfigurationError) as info:
        register_architecture("test-positional")(factory)
    assert str(info.value) == MSG_NOT_KEYWORD_ONLY.format(
        name="test-positional", param="width", kind="positional or keyword"
    )
    assert "test-positional" not in ARCHITECTURES


def test_register_a_factory_function() -> None:
    @register_architecture("test-linear")
    def linear(*, width: int = 3) -> nn.Module:
        return nn.Linear(width, 2)

    try:
        model = build_model("test-linear", arguments={"width": 4})
        assert isinstance(model, nn.Linear)
        assert model.trustlab_architecture == {"name": "test-linear", "arguments": {"width": 4}}
    finally:
        ARCHITECTURES.remove("test-linear")


def test_factory_must_return_a_module() -> None:
    @register_architecture("test-not-module")
    def not_a_module() -> nn.Module:
        return "oops"  # type: ignore[return-value]

    try:
        with pytest.raises(ConfigurationError, match=r"not a torch\.nn\.Module"):
            build_model("test-not-module")
    finally:
        ARCHITECTURES.remove("test-not-module")


def test_mlp_state_dict_keys_do_not_depend_on_dropout() -> None:
    plain = build_model("mlp", arguments={"in_features": 3, "hidden": [4]})
    dropped = build_model("mlp", arguments={"in_features": 3, "hidden": [4], "dropout": 0.5})
    assert list(plain.state_dict()) == list(dropped.state_dict())
    assert list(plain.state_dict()) == [
        "hidden.0.weight",
        "hidden.0.bias",
        "head.weight",
        "head.bias",
    ]


def test_mlp_without_hidden_layers_is_linear() -> None:
    model = build_model("mlp", arguments={"in_features": 3, "hidden": [], "num_classes": 4})
    assert list(model.state_dict()) == ["head.weight", "head.bias"]
    assert model(torch.zeros(2, 3)).shape == (2, 4)


def test_digits_cnn_layout() -> None:
    shapes = {k: tuple(v.shape) for k, v in build_model("digits-cnn").state_dict().items()}
    assert shapes == {
        "conv1.weight": (32, 1, 3, 3),
        "conv1.bias": (32,),
        "conv2.weight": (64, 32, 3, 3),
        "conv2.bias": (64,),
        "fc1.weight": (128, 1024),
        "fc1.bias": (128,),
        "fc2.weight": (10, 128),
        "fc2.bias": (10,),
    }


def test_construction_is_seeded_by_torch() -> None:
    torch.manual_seed(3)
    first = build_model("digits-cnn").state_dict()
    torch.manual_seed(3)
    second = build_model("digits-cnn").state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)

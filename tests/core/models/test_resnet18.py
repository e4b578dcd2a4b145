"""ResNet-18 must match torchvision's resnet18 state dict, except the 3x3 CIFAR stem."""

from __future__ import annotations

import pytest
import torch

from trustlab.core.models import build_model

BN_SUFFIXES = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(prefix: str, channels: int) -> list[tuple[str, tuple[int, ...]]]:
    return [
        (f"{prefix}.{suffix}", () if suffix == "num_batches_tracked" else (channels,))
        for suffix in BN_SUFFIXES
    ]


def _torchvision_resnet18_keys(
    in_channels: int = 3, num_classes: int = 10
) -> list[tuple[str, tuple[int, ...]]]:
    """torchvision.models.resnet18().state_dict(), in order, with the stem made 3x3."""
    keys: list[tuple[str, tuple[int, ...]]] = [("conv1.weight", (64, in_channels, 3, 3))]
    keys += _bn("bn1", 64)
    in_planes = 64
    for layer, planes in enumerate((64, 128, 256, 512), start=1):
        for block in (0, 1):
            prefix = f"layer{layer}.{block}"
            block_in = in_planes if block == 0 else planes
            keys.append((f"{prefix}.conv1.weight", (planes, block_in, 3, 3)))
            keys += _bn(f"{prefix}.bn1", planes)
            keys.append((f"{prefix}.conv2.weight", (planes, planes, 3, 3)))
            keys += _bn(f"{prefix}.bn2", planes)
            if block == 0 and block_in != planes:
                keys.append((f"{prefix}.downsample.0.weight", (planes, block_in, 1, 1)))
                keys += _bn(f"{prefix}.downsample.1", planes)
        in_planes = planes
    keys += [("fc.weight", (num_classes, 512)), ("fc.bias", (num_classes,))]
    return keys


# Written out in full, as torchvision lists it (122 entries), so the test does not share the
# generator's assumptions.
TORCHVISION_RESNET18_NAMES = [
    "conv1.weight",
    *[f"bn1.{s}" for s in BN_SUFFIXES],
    *[
        name
        for layer in (1, 2, 3, 4)
        for block in (0, 1)
        for name in (
            f"layer{layer}.{block}.conv1.weight",
            *[f"layer{layer}.{block}.bn1.{s}" for s in BN_SUFFIXES],
            f"layer{layer}.{block}.conv2.weight",
            *[f"layer{layer}.{block}.bn2.{s}" for s in BN_SUFFIXES],
            *(
                [
                    f"layer{layer}.0.downsample.0.weight",
                    *[f"layer{layer}.0.downsample.1.{s}" for s in BN_SUFFIXES],
                ]
                if layer > 1 and block == 0
                else []
            ),
        )
    ],
    "fc.weight",
    "fc.bias",
]


def test_expected_key_list_is_torchvisions() -> None:
    assert len(TORCHVISION_RESNET18_NAMES) == 122
    assert [name for name, _ in _torchvision_resnet18_keys()] == TORCHVISION_RESNET18_NAMES
    # Spot checks against torchvision's printed state dict.
    shapes = dict(_torchvision_resnet18_keys(num_classes=1000))
    assert shapes["layer2.0.conv1.weight"] == (128, 64, 3, 3)
    assert shapes["layer2.0.downsample.0.weight"] == (128, 64, 1, 1)
    assert shapes["layer4.1.bn2.running_var"] == (512,)
    assert shapes["fc.weight"] == (1000, 512)
    assert "layer1.0.downsample.0.weight" not in shapes


@pytest.mark.parametrize(("in_channels", "num_classes"), [(3, 10), (1, 100)])
def test_names_and_shapes_match_torchvision(in_channels: int, num_classes: int) -> None:
    model = build_model(
        "resnet18", arguments={"in_channels": in_channels, "num_classes": num_classes}
    )
    actual = [(name, tuple(t.shape)) for name, t in model.state_dict().items()]
    assert actual == _torchvision_resnet18_keys(in_channels, num_classes)


def test_torchvision_style_state_dict_loads_strict() -> None:
    generator = torch.Generator().manual_seed(0)
    state = {
        name: (
            torch.tensor(7, dtype=torch.long)
            if name.endswith("num_batches_tracked")
            else torch.rand(shape, generator=generator) + 0.5
        )
        for name, shape in _torchvision_resnet18_keys()
    }
    model = build_model("resnet18")
    result = model.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    loaded = model.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    model.eval()
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_cifar_stem_keeps_resolution() -> None:
    model = build_model("resnet18").eval()
    features = model.layer1(model.relu(model.bn1(model.conv1(torch.zeros(1, 3, 32, 32)))))
    assert features.shape == (1, 64, 32, 32)  # no stride-2 stem and no max-pool
    assert not hasattr(model, "maxpool")


def test_initialisation_follows_torchvision() -> None:
    model = build_model("resnet18")
    assert torch.equal(model.bn1.weight, torch.ones(64))
    assert torch.equal(model.layer1[0].bn2.bias, torch.zeros(64))
    std = float(model.layer4[0].conv1.weight.detach().std())
    assert std == pytest.approx((2 / (512 * 9)) ** 0.5, rel=0.05)  # Kaiming, fan_out

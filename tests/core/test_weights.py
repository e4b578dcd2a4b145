"""Safe weights I/O: safetensors round trips, refusing pickles, and explained mismatches."""

from __future__ import annotations

import json
import os
import pickle
import re
import struct
from pathlib import Path

import pytest
import torch
from hostile import Exploit
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from trustlab.core.errors import ConfigurationError, UnknownNameError, WeightsError
from trustlab.core.models import build_model
from trustlab.core.weights import (
    ARCHITECTURE_KEY,
    ARGUMENTS_KEY,
    MSG_NO_ARCHITECTURE,
    MSG_RESERVED_METADATA,
    load_model,
    load_state_dict_strict,
    read_architecture,
    read_state_dict,
    save_model,
)


@pytest.fixture
def mlp() -> nn.Module:
    torch.manual_seed(0)
    return build_model("mlp", arguments={"in_features": 4, "hidden": [8], "num_classes": 3})


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


# -- save_model / load_model ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "arguments"),
    [("digits-cnn", {}), ("mlp", {"in_features": 4, "dropout": 0.25}), ("resnet18", {})],
)
def test_round_trip(tmp_path: Path, name: str, arguments: dict[str, object]) -> None:
    torch.manual_seed(1)
    model = build_model(name, arguments=arguments)
    path = tmp_path / "target.safetensors"
    save_model(model, path)
    loaded = load_model(path)
    assert not loaded.training
    assert loaded.trustlab_architecture == model.trustlab_architecture
    assert _same_weights(model, loaded)


def test_metadata_content(tmp_path: Path, mlp: nn.Module) -> None:
    path = tmp_path / "m.safetensors"
    save_model(mlp, path, metadata={"task": "adult", "author": "team-a"})
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    assert metadata[ARCHITECTURE_KEY] == "mlp"
    assert metadata[ARGUMENTS_KEY] == json.dumps(
        {"dropout": 0.0, "hidden": [8], "in_features": 4, "num_classes": 3}, sort_keys=True
    )
    assert metadata["task"] == "adult"
    assert read_architecture(path) == (
        "mlp",
        {"dropout": 0.0, "hidden": [8], "in_features": 4, "num_classes": 3},
    )


def test_saving_twice_is_byte_identical(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model("resnet18", arguments={"num_classes": 7})
    metadata = {f"key{i}": str(i) for i in range(20)}  # many keys: a random order would show
    blobs = []
    for i in range(5):
        path = tmp_path / f"{i}.safetensors"
        save_model(model, path, metadata=metadata)
        blobs.append(path.read_bytes())
    assert all(blob == blobs[0] for blob in blobs)


def test_metadata_keys_are_sorted_in_the_header(tmp_path: Path, mlp: nn.Module) -> None:
    path = tmp_path / "m.safetensors"
    save_model(mlp, path, metadata={"z": "1", "a": "2"})
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    assert length % 8 == 0
    header = json.loads(data[8 : 8 + length])
    assert next(iter(header)) == "__metadata__"
    assert list(header["__metadata__"]) == sorted(header["__metadata__"])


def test_saved_tensors_are_contiguous_cpu_copies(tmp_path: Path) -> None:
    model = build_model("mlp", arguments={"in_features": 3, "hidden": [4]})
    with torch.no_grad():
        model.hidden[0].weight.set_(model.hidden[0].weight.detach().t().contiguous().t())
    assert not model.hidden[0].weight.is_contiguous()
    path = tmp_path / "m.safetensors"
    save_model(model, path)
    assert _same_weights(model, load_model(path))


def test_tied_weights_can_be_saved(tmp_path: Path) -> None:
    model = build_model("mlp", arguments={"in_features": 4, "hidden": [4], "num_classes": 4})
    model.head.weight = model.hidden[0].weight
    path = tmp_path / "tied.safetensors"
    save_model(model, path)
    assert _same_weights(model, load_model(path))


def test_write_is_atomic_and_leaves_no_temp_files(tmp_path: Path, mlp: nn.Module) -> None:
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"old")
    save_model(mlp, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    assert read_architecture(path)[0] == "mlp"


def test_write_into_missing_folder(tmp_path: Path, mlp: nn.Module) -> None:
    with pytest.raises(WeightsError, match="Could not write"):
        save_model(mlp, tmp_path / "missing" / "m.safetensors")


def test_model_without_architecture_is_refused(tmp_path: Path) -> None:
    with pytest.raises(WeightsError) as info:
        save_model(nn.Linear(3, 2), tmp_path / "m.safetensors")
    assert str(info.value) == MSG_NO_ARCHITECTURE


class MLPLike(nn.Module):
    """Not built by build_model, but with the state dict of mlp(in_features=3, hidden=[])."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(3, 2)


def test_explicit_architecture(tmp_path: Path) -> None:
    model = MLPLike()
    path = tmp_path / "m.safetensors"
    save_model(model, path, architecture="mlp", arguments={"in_features": 3, "hidden": []})
    assert read_architecture(path) == (
        "mlp",
        {"dropout": 0.0, "hidden": [], "in_features": 3, "num_classes": 2},
    )
    assert _same_weights(model, load_model(path))


def test_explicit_architecture_must_fit_the_model(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match=r"does not match architecture 'mlp'.*head.weight"):
        save_model(
            MLPLike(),
            tmp_path / "m.safetensors",
            architecture="mlp",
            arguments={"in_features": 5, "hidden": []},
        )


def test_explicit_arguments_override_recorded_ones(tmp_path: Path) -> None:
    model = build_model("mlp", arguments={"in_features": 3, "hidden": []})
    path = tmp_path / "m.safetensors"
    with pytest.raises(WeightsError, match="does not match"):
        save_model(model, path, arguments={"in_features": 3, "hidden": [2]})


def test_unknown_explicit_architecture(tmp_path: Path) -> None:
    with pytest.raises(UnknownNameError):
        save_model(nn.Linear(3, 2), tmp_path / "m.safetensors", architecture="nope")


def test_reserved_and_non_string_metadata(tmp_path: Path, mlp: nn.Module) -> None:
    with pytest.raises(ConfigurationError) as info:
        save_model(mlp, tmp_path / "m.safetensors", metadata={ARCHITECTURE_KEY: "x"})
    assert str(info.value) == MSG_RESERVED_METADATA.format(key=ARCHITECTURE_KEY)
    with pytest.raises(ConfigurationError, match="must map str to str"):
        save_model(mlp, tmp_path / "m.safetensors", metadata={"epochs": 3})  # type: ignore[dict-item]


def test_load_model_does_not_touch_the_global_rng(tmp_path: Path, mlp: nn.Module) -> None:
    path = tmp_path / "m.safetensors"
    save_model(mlp, path)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    load_model(path)
    assert torch.equal(torch.rand(3), expected)


def test_load_model_device(tmp_path: Path, mlp: nn.Module) -> None:
    path = tmp_path / "m.safetensors"
    save_model(mlp, path)
    assert next(load_model(path, device=torch.device("cpu")).parameters()).device.type == "cpu"


def test_load_model_with_unregistered_architecture(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.ones(1)}, path, metadata={ARCHITECTURE_KEY: "evil-net"})
    with pytest.raises(WeightsError, match="Unknown architecture 'evil-net'"):
        load_model(path)


def test_load_model_with_bad_arguments(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    meta = {ARCHITECTURE_KEY: "mlp", ARGUMENTS_KEY: json.dumps({"in_features": 3, "x": 1})}
    save_file({"w": torch.ones(1)}, path, metadata=meta)
    with pytest.raises(WeightsError, match="Unknown argument"):
        load_model(path)


# -- read_architecture --------------------------------------------------------------------


def test_read_architecture_without_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.ones(1)}, path)
    with pytest.raises(WeightsError, match="Pass the architecture explicitly"):
        read_architecture(path)


def test_read_architecture_of_a_pt_file(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save({"w": torch.ones(1)}, path)
    with pytest.raises(WeightsError, match="Only safetensors files"):
        read_architecture(path)


@pytest.mark.parametrize("raw", ["not json", "[1, 2]"])
def test_read_architecture_with_bad_arguments_json(tmp_path: Path, raw: str) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.ones(1)}, path, metadata={ARCHITECTURE_KEY: "mlp", ARGUMENTS_KEY: raw})
    with pytest.raises(WeightsError, match="must be a JSON object"):
        read_architecture(path)


# -- read_state_dict ----------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".pt", ".pth", ".bin"])
def test_read_torch_state_dict(tmp_path: Path, mlp: nn.Module, suffix: str) -> None:
    path = tmp_path / f"w{suffix}"
    torch.save(mlp.state_dict(), path)
    state = read_state_dict(path)
    assert list(state) == list(mlp.state_dict())
    load_state_dict_strict(mlp, state)


def test_read_legacy_torch_format(tmp_path: Path, mlp: nn.Module) -> None:
    path = tmp_path / "w.pt"
    torch.save(mlp.state_dict(), path, _use_new_zipfile_serialization=False)
    assert list(read_state_dict(path)) == list(mlp.state_dict())


def test_read_wrapped_checkpoint(tmp_path: Path, mlp: nn.Module) -> None:
    path = tmp_path / "ckpt.pth"
    torch.save({"epoch": 3, "state_dict": mlp.state_dict(), "best_acc": 0.9}, path)
    assert list(read_state_dict(path)) == list(mlp.state_dict())


def test_read_gives_cpu_tensors(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save({"w": torch.ones(2)}, path)
    assert read_state_dict(path)["w"].device.type == "cpu"


@pytest.mark.parametrize("name", ["w.safetensors", "weights", "weights.ckpt"])
def test_read_safetensors_and_sniff(tmp_path: Path, name: str) -> None:
    """Other extensions (or none) are recognised by the safetensors header."""
    path = tmp_path / name
    save_file({"a": torch.arange(3.0), "b": torch.zeros(2, dtype=torch.int64)}, path)
    state = read_state_dict(path)
    assert torch.equal(state["a"], torch.arange(3.0))
    assert state["b"].dtype == torch.int64


@pytest.mark.parametrize("legacy", [False, True])
def test_sniff_torch_files(tmp_path: Path, legacy: bool) -> None:
    path = tmp_path / "weights.data"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=not legacy)
    assert torch.equal(read_state_dict(path)["w"], torch.ones(2))


def test_unknown_format(tmp_path: Path) -> None:
    path = tmp_path / "weights.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    with pytest.raises(WeightsError, match=r"unknown extension.*Accepted formats: safetensors"):
        read_state_dict(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        read_state_dict(tmp_path / "nope.safetensors")


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_truncated_files(tmp_path: Path, mlp: nn.Module, suffix: str) -> None:
    path = tmp_path / f"w{suffix}"
    if suffix == ".pt":
        torch.save(mlp.state_dict(), path)
    else:
        save_model(mlp, path)
    data = path.read_bytes()
    for cut in (0, 5, 40, len(data) // 2, len(data) - 3):
        path.write_bytes(data[:cut])
        with pytest.raises(WeightsError, match="corrupt or truncated"):
            read_state_dict(path)


@pytest.mark.parametrize("suffix", [".safetensors", ".pt", ".bin"])
def test_garbage_files(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"w{suffix}"
    path.write_bytes(os.urandom(256))
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        read_state_dict(path)


def test_safetensors_with_lying_header(tmp_path: Path) -> None:
    header = json.dumps({"w": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}})
    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + b"\x00" * 16)
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        read_state_dict(path)


@pytest.mark.parametrize("legacy", [False, True])
@pytest.mark.parametrize("suffix", [".pt", ".bin", ".weights"])
def test_code_executing_pickle_is_refused_and_not_run(
    tmp_path: Path, legacy: bool, suffix: str
) -> None:
    marker = tmp_path / "pwned"
    payload = {"weight": torch.ones(2), "evil": Exploit(marker)}
    path = tmp_path / f"evil{suffix}"
    torch.save(payload, path, _use_new_zipfile_serialization=not legacy)
    assert not marker.exists()
    with pytest.raises(WeightsError, match="could run code when unpickled"):
        read_state_dict(path)
    assert not marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_raw_pickle_is_refused_and_not_run(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.bin"
    path.write_bytes(pickle.dumps({"w": Exploit(marker)}, protocol=protocol))
    with pytest.raises(WeightsError, match=r"[Rr]efused"):
        read_state_dict(path)
    assert not marker.exists()


def test_refusal_does_not_repeat_torchs_advice(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"w": Exploit(tmp_path / "pwned")}, path)
    with pytest.raises(WeightsError) as info:
        read_state_dict(path)
    message = str(info.value)
    assert "posix.system" in message or "os.system" in message
    assert "weights_only` set to `False" not in message
    assert "add_safe_globals" not in message


def test_pickled_module_is_refused(tmp_path: Path, mlp: nn.Module) -> None:
    path = tmp_path / "model.pt"
    torch.save(mlp, path)
    with pytest.raises(WeightsError, match=r"object trustlab.core.models.mlp.MLP, .*state_dict"):
        read_state_dict(path)


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([torch.ones(1)], "holds a list, not a state dict"),
        (torch.ones(1), "holds a tensor, not a state dict"),
        ({"w": torch.ones(1), "epoch": 3}, "the entry 'epoch' is a int"),
        ({"w": {"nested": torch.ones(1)}}, "the entry 'w' is a dict"),
        ({1: torch.ones(1)}, "non-string key 1"),
    ],
)
def test_not_a_flat_state_dict(tmp_path: Path, obj: object, message: str) -> None:
    path = tmp_path / "w.pt"
    torch.save(obj, path)
    with pytest.raises(WeightsError, match=message):
        read_state_dict(path)


# -- load_state_dict_strict -----------------------------------------------------------------


def test_strict_load_copies_weights(mlp: nn.Module) -> None:
    other = build_model("mlp", arguments={"in_features": 4, "hidden": [8], "num_classes": 3})
    load_state_dict_strict(other, mlp.state_dict())
    assert _same_weights(other, mlp)


def test_shape_mismatch_message() -> None:
    model = build_model("resnet18")
    state = dict(model.state_dict())
    state["layer1.0.conv1.weight"] = torch.zeros(32, 64, 3, 3)
    before = model.layer1[0].conv2.weight.detach().clone()
    state["layer1.0.conv2.weight"] = torch.ones(64, 64, 3, 3)
    with pytest.raises(WeightsError) as info:
        load_state_dict_strict(model, state)
    assert str(info.value) == (
        "The weights do not fit the model: "
        "layer1.0.conv1.weight: expected (64, 64, 3, 3), got (32, 64, 3, 3)."
    )
    assert torch.equal(model.layer1[0].conv2.weight, before)  # nothing copied


def test_missing_and_unexpected_keys_are_listed(mlp: nn.Module) -> None:
    state = dict(mlp.state_dict())
    del state["head.bias"]
    state["extra.weight"] = torch.ones(1)
    with pytest.raises(WeightsError) as info:
        load_state_dict_strict(mlp, state)
    assert str(info.value) == (
        "The weights do not fit the model: missing keys (1): head.bias; "
        "unexpected keys (1): extra.weight."
    )


def test_only_the_first_keys_are_listed() -> None:
    model = build_model("resnet18")
    expected = (
        "missing keys (122): conv1.weight, bn1.weight, bn1.bias, bn1.running_mean, "
        "bn1.running_var and 117 more."
    )
    with pytest.raises(WeightsError, match=re.escape(expected)):
        load_state_dict_strict(model, {})


def test_data_parallel_prefix_hint(mlp: nn.Module) -> None:
    state = {f"module.{k}": v for k, v in mlp.state_dict().items()}
    with pytest.raises(WeightsError, match=re.escape("start with 'module.'")):
        load_state_dict_strict(mlp, state)


def test_integer_tensor_for_float_parameter(mlp: nn.Module) -> None:
    state = dict(mlp.state_dict())
    state["head.bias"] = torch.zeros(3, dtype=torch.int64)
    expected = "head.bias: expected floating-point values like torch.float32, got torch.int64"
    with pytest.raises(WeightsError, match=re.escape(expected)):
        load_state_dict_strict(mlp, state)


def test_float_tensor_for_integer_buffer() -> None:
    model = build_model("resnet18")
    state = dict(model.state_dict())
    state["bn1.num_batches_tracked"] = torch.tensor(1.5)
    with pytest.raises(
        WeightsError, match=re.escape("bn1.num_batches_tracked: expected integer or bool values")
    ):
        load_state_dict_strict(model, state)


def test_other_float_dtypes_are_accepted(mlp: nn.Module) -> None:
    state = {k: v.to(torch.float16) for k, v in mlp.state_dict().items()}
    load_state_dict_strict(mlp, state)
    assert mlp.head.weight.dtype == torch.float32


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_refused(mlp: nn.Module, bad: float) -> None:
    state = dict(mlp.state_dict())
    weight = state["hidden.0.weight"].clone()
    weight[0, 0] = bad
    weight[1, 1] = bad
    state["hidden.0.weight"] = weight
    with pytest.raises(WeightsError, match=r"hidden.0.weight: contains 2 NaN or infinite"):
        load_state_dict_strict(mlp, state)


def test_sparse_tensor_is_refused(mlp: nn.Module) -> None:
    state = dict(mlp.state_dict())
    state["head.bias"] = torch.zeros(3).to_sparse()
    with pytest.raises(WeightsError, match="expected a dense tensor"):
        load_state_dict_strict(mlp, state)


def test_state_dict_must_be_a_mapping(mlp: nn.Module) -> None:
    with pytest.raises(WeightsError, match="must be a mapping"):
        load_state_dict_strict(mlp, [("head.bias", torch.ones(3))])  # type: ignore[arg-type]

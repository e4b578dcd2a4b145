"""Reading the model and the data, and refusing bad input with one clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from trustlab.audit import run
from trustlab.audit.inputs import (
    AuditData,
    check_model_fits_data,
    load_audit_data,
    load_audit_model,
    select_groups,
)
from trustlab.core.data import save_npz
from trustlab.core.errors import ConfigurationError, DataError, TrustlabError

HERE = Path(__file__).parent


def test_safetensors_model_keeps_its_architecture(tabular) -> None:  # type: ignore[no-untyped-def]
    model = load_audit_model(tabular.model)
    assert model.kind == "safetensors"
    assert model.architecture is not None and model.architecture[0] == "mlp"
    assert model.differentiable
    assert model.digest == load_audit_model(tabular.model).digest


def test_module_function_model_from_a_file(tmp_path: Path) -> None:
    script = tmp_path / "factory.py"
    script.write_text(
        "from torch import nn\ndef make():\n    return nn.Sequential(nn.Linear(5, 2))\n"
    )
    model = load_audit_model(f"{script}:make")
    assert model.kind == "callable" and model.architecture is None
    with pytest.raises(ConfigurationError, match="has no function 'nope'"):
        load_audit_model(f"{script}:nope")


def test_module_function_must_return_a_module(tmp_path: Path) -> None:
    script = tmp_path / "bad_factory.py"
    script.write_text('def make():\n    return 3\n\ndef fail():\n    raise ValueError("no")\n')
    with pytest.raises(ConfigurationError, match=r"returned a int, not a torch\.nn\.Module"):
        load_audit_model(f"{script}:make")
    with pytest.raises(ConfigurationError, match="failed: ValueError: no"):
        load_audit_model(f"{script}:fail")


def test_unknown_model_spec_says_what_is_accepted(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="module:function"):
        load_audit_model(tmp_path / "model.bin")
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_audit_model(tmp_path / "missing.safetensors")


def test_npz_reads_member_flags_and_groups(tabular) -> None:  # type: ignore[no-untyped-def]
    data = load_audit_data(tabular.data)
    assert data.member is not None and data.member.dtype == bool
    assert sorted(data.groups) == ["groups"]
    assert data.bounds == (0.0, 1.0)
    assert data.digest() == load_audit_data(tabular.data).digest()


def test_registered_data_set_with_split_carries_its_sensitive_attributes() -> None:
    data = load_audit_data("german:test")
    assert data.groups and all(len(v) == data.n_examples for v in data.groups.values())


def test_npz_without_y_is_refused(tmp_path: Path) -> None:
    save_npz(tmp_path / "no_y.npz", x=np.zeros((4, 3), np.float32))
    with pytest.raises(DataError, match="has no array 'y'"):
        load_audit_data(tmp_path / "no_y.npz")


def test_nan_inputs_are_refused_naming_the_example(tmp_path: Path) -> None:
    x = np.zeros((4, 3), np.float32)
    x[2, 1] = np.nan
    save_npz(tmp_path / "nan.npz", x=x, y=np.zeros(4, np.int64))
    with pytest.raises(DataError, match="NaN or infinite values \\(first at example 2\\)"):
        load_audit_data(tmp_path / "nan.npz")


def test_float_labels_are_refused() -> None:
    with pytest.raises(DataError, match="must be integers"):
        load_audit_data(AuditData("toy", np.zeros((3, 2), np.float32), np.zeros(3)))


def test_unknown_data_name_lists_the_registered_ones() -> None:
    with pytest.raises(DataError, match="registered data set name \\(adult"):
        load_audit_data("nope")


def test_output_shape_that_does_not_match_the_labels(tabular) -> None:  # type: ignore[no-untyped-def]
    data = load_audit_data(tabular.data)
    data.y = data.y * 2  # labels 0 and 2 for a two-class model
    model = load_audit_model(tabular.model)
    with pytest.raises(DataError, match="outputs 2 class scores but the labels"):
        check_model_fits_data(model, data)


def test_model_that_fails_on_the_inputs(tabular) -> None:  # type: ignore[no-untyped-def]
    data = load_audit_data(tabular.data)
    model = load_audit_model(nn.Linear(7, 2))
    with pytest.raises(DataError, match="The model failed on a batch"):
        check_model_fits_data(model, data)


def test_model_that_returns_one_score_per_example(tabular) -> None:  # type: ignore[no-untyped-def]
    data = load_audit_data(tabular.data)
    model = load_audit_model(nn.Sequential(nn.Linear(5, 1), nn.Flatten(0)))
    with pytest.raises(DataError, match="needs logits of shape \\(batch, n_classes\\)"):
        check_model_fits_data(model, data)


def test_sensitive_attribute_checks(tabular) -> None:  # type: ignore[no-untyped-def]
    data = load_audit_data(tabular.data)
    assert list(select_groups(data, None)) == ["groups"]
    with pytest.raises(DataError, match="no sensitive attribute 'sex'; the attributes are groups"):
        select_groups(data, ["sex"])
    data.groups["constant"] = np.full(data.n_examples, "x")
    with pytest.raises(DataError, match="has a single group \\('x'\\)"):
        select_groups(data, ["constant"])
    assert "constant" not in select_groups(data, None)


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"only": "performance,nope"}, ConfigurationError, "Unknown section 'nope'"),
        ({"profile": "fast"}, ConfigurationError, "Unknown profile 'fast'"),
        ({"sensitive": "groups,sex"}, DataError, "no sensitive attribute 'sex'"),
        ({"eps": -1.0}, ConfigurationError, "finite number > 0"),
        ({"thresholds": {"x.y": (1, 0)}}, ConfigurationError, "Unknown threshold"),
    ],
)
def test_bad_options_raise_before_anything_is_written(
    tabular,
    tmp_path: Path,
    options: dict,
    error: type[TrustlabError],
    text: str,  # type: ignore[no-untyped-def, type-arg]
) -> None:
    out = tmp_path / "out"
    with pytest.raises(error, match=text):
        run(tabular.model, tabular.data, out_dir=out, **options)
    assert not out.exists()


def test_device_that_does_not_exist_is_refused(tabular) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigurationError, match="Cannot use device 'nope'"):
        load_audit_model(tabular.model, device="nope")


def test_models_are_moved_to_the_device(tabular) -> None:  # type: ignore[no-untyped-def]
    model = load_audit_model(tabular.model, device="cpu")
    assert next(model.module.parameters()).device == torch.device("cpu")


def test_module_function_model_from_the_working_folder(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "audit_factory_mod.py").write_text(
        "from torch import nn\ndef build():\n    return nn.Linear(5, 2)\n"
    )
    monkeypatch.chdir(tmp_path)
    model = load_audit_model("audit_factory_mod:build")
    assert isinstance(model.module, nn.Linear)
    with pytest.raises(ConfigurationError, match="Cannot import 'no_such_module_x'"):
        load_audit_model("no_such_module_x:build")

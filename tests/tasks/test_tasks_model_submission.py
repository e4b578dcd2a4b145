"""Weights submissions: the architecture comes from the task, files are read strictly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hostile import write_hostile_state_dict
from pydantic import ValidationError

from trustlab.core.errors import SubmissionError
from trustlab.core.weights import save_model
from trustlab.tasks.model_submission import (
    ArchitectureChoice,
    check_architectures,
    load_submitted_model,
    model_name_field,
)

CHOICES = [
    ArchitectureChoice(
        name="small",
        architecture="mlp",
        arguments={"in_features": 4, "hidden": [8], "num_classes": 3},
    ),
    ArchitectureChoice(
        name="wide",
        architecture="mlp",
        arguments={"in_features": 4, "hidden": [16], "num_classes": 3},
    ),
]


def test_choices_become_the_form_fields_choices() -> None:
    field = model_name_field(CHOICES)
    assert field.name == "model_name" and field.choices == ("small", "wide")


def test_spec_problems_are_named() -> None:
    assert check_architectures(CHOICES, field="params.architectures") == []
    twice = [CHOICES[0], CHOICES[0]]
    assert "listed twice" in check_architectures(twice, field="x")[0]
    unknown = [ArchitectureChoice(name="nope")]
    assert "unknown architecture 'nope'" in check_architectures(unknown, field="x")[0]
    bad_args = [ArchitectureChoice(name="mlp", arguments={"in_features": 0, "num_classes": 3})]
    assert "architecture 'mlp'" in check_architectures(bad_args, field="x")[0]
    with pytest.raises(ValidationError, match="unknown architecture"):
        ArchitectureChoice(name="x", architecture="not-registered")


def test_weights_load_into_the_chosen_architecture(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = CHOICES[1].build()
    save_model(model, tmp_path / "w.safetensors")
    torch.save(model.state_dict(), tmp_path / "w.pt")
    for name in ("w.safetensors", "w.pt"):
        loaded = load_submitted_model(CHOICES, file=tmp_path / name, fields={"model_name": "wide"})
        assert not loaded.training
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value)


def test_wrong_architecture_names_the_parameter(tmp_path: Path) -> None:
    torch.save(CHOICES[1].build().state_dict(), tmp_path / "w.pt")
    with pytest.raises(
        SubmissionError, match=r"do not fit architecture 'small'.*expected \(8, 4\)"
    ):
        load_submitted_model(CHOICES, file=tmp_path / "w.pt", fields={"model_name": "small"})


@pytest.mark.parametrize(
    ("fields", "message"),
    [({}, "'model_name' is required"), ({"model_name": "resnet18"}, "not accepted by this task")],
)
def test_missing_or_unlisted_model_name(
    tmp_path: Path, fields: dict[str, str], message: str
) -> None:
    torch.save(CHOICES[0].build().state_dict(), tmp_path / "w.pt")
    with pytest.raises(SubmissionError, match=message):
        load_submitted_model(CHOICES, file=tmp_path / "w.pt", fields=fields)


def test_hostile_pickle_is_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = write_hostile_state_dict(tmp_path / "w.pt", model=CHOICES[0].build(), marker=marker)
    with pytest.raises(SubmissionError, match="could run code when unpickled"):
        load_submitted_model(CHOICES, file=path, fields={"model_name": "small"})
    assert not marker.exists()


def test_garbage_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "w.pt").write_bytes(b"not weights at all")
    with pytest.raises(SubmissionError, match="cannot be used"):
        load_submitted_model(CHOICES, file=tmp_path / "w.pt", fields={"model_name": "small"})

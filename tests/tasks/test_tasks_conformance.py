"""One conformance test over every registered task kind."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from trustlab.tasks import TaskKind, get_kind, list_kinds


@pytest.mark.parametrize("name", list_kinds())
def test_every_task_kind_is_complete(name: str) -> None:
    kind = get_kind(name)
    assert isinstance(kind, TaskKind)
    assert kind.name == name
    assert issubclass(kind.params_model, BaseModel)
    assert kind.params_model.model_config.get("extra") == "forbid", "unknown params must fail"
    assert kind.submission_format, "teams need to be told what to submit"
    assert isinstance(kind.higher_is_better, bool)
    for field in kind.form_fields:
        assert field.name != "file" and field.description

"""One conformance test over every registered task kind."""

from __future__ import annotations

from importlib import resources

import pytest
from pydantic import BaseModel

from trustlab.tasks import TaskKind, get_kind, list_kinds
from trustlab.tasks.readme import TEMPLATE_FOLDER, TEMPLATE_PACKAGE, template_name


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


@pytest.mark.parametrize("name", list_kinds())
def test_every_built_in_kind_ships_a_readme_template(name: str) -> None:
    kind = get_kind(name)
    if not type(kind).__module__.startswith("trustlab.tasks."):
        pytest.skip("a plug-in kind writes its README as it likes")
    template = resources.files(TEMPLATE_PACKAGE).joinpath(TEMPLATE_FOLDER, template_name(name))
    assert template.is_file(), f"{name} needs templates/{template_name(name)}"

"""Submissions that are model weights: shared by every kind where a team submits a model.

A task lists the architectures it accepts (registry names from
:func:`trustlab.core.models.list_architectures`, with the task's own constructor arguments). A
team submits a weights file (safetensors, or a ``.pt`` state dict read with
``weights_only=True``) and picks one of the listed architectures in the ``model_name`` form
field. The architecture always comes from the task, never from the file: metadata inside a
submitted safetensors file is ignored.

Validation and scoring already run in a limited child process (see
:mod:`trustlab.tasks.build`); the helpers here turn every problem with the file into a
:class:`~trustlab.core.errors.SubmissionError` whose message names what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from torch import nn

from trustlab.core.errors import SubmissionError, TrustlabError
from trustlab.core.models import build_model, list_architectures
from trustlab.core.weights import load_state_dict_strict, read_state_dict
from trustlab.tasks.base import FormField

MODEL_NAME_FIELD = "model_name"

MSG_UNKNOWN_ARCHITECTURE = (
    "unknown architecture {name!r}; use one of the registered architectures: {known}"
)
MSG_DUPLICATE_CHOICE = "architecture {name!r} is listed twice; give each entry a unique name"
MSG_NO_CHOICE = (
    "The form field 'model_name' is required: name the architecture of your weights, one of "
    "{choices}."
)
MSG_BAD_CHOICE = "model_name {value!r} is not accepted by this task; use one of {choices}."
MSG_UNREADABLE = "Your weights file cannot be used: {error}"
MSG_DOES_NOT_FIT = "Your weights do not fit architecture {name!r}: {error}"


class ArchitectureChoice(BaseModel):
    """One architecture a task accepts: the name teams submit, and how the server builds it.

    ``name`` is what goes into the ``model_name`` form field; ``architecture`` is the registry
    name (defaults to ``name``); ``arguments`` are the constructor arguments the task fixes.
    """

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    architecture: str | None = None
    arguments: dict[str, Any] = Field(default_factory=dict)

    @field_validator("architecture")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in list_architectures():
            raise ValueError(
                MSG_UNKNOWN_ARCHITECTURE.format(name=value, known=", ".join(list_architectures()))
            )
        return value

    @property
    def registry_name(self) -> str:
        return self.architecture or self.name

    def build(self) -> nn.Module:
        """A freshly initialised model of this architecture, with the task's arguments."""
        return build_model(self.registry_name, arguments=self.arguments)


def check_architecture_name(name: str, *, field: str) -> list[str]:
    """The spec problem of a registry name that is not a registered architecture, if any."""
    known = list_architectures()
    if name in known:
        return []
    return [f"field '{field}': unknown architecture {name!r}; use one of {', '.join(known)}"]


def check_architectures(choices: Sequence[ArchitectureChoice], *, field: str) -> list[str]:
    """Spec problems in a list of architecture choices (for :meth:`TaskKind.check_spec`)."""
    problems: list[str] = []
    seen: set[str] = set()
    known = list_architectures()
    for choice in choices:
        if choice.name in seen:
            problems.append(f"field '{field}': " + MSG_DUPLICATE_CHOICE.format(name=choice.name))
        seen.add(choice.name)
        if choice.registry_name not in known:
            problems.append(
                f"field '{field}': "
                + MSG_UNKNOWN_ARCHITECTURE.format(name=choice.registry_name, known=", ".join(known))
            )
            continue
        try:
            choice.build()
        except TrustlabError as exc:
            problems.append(f"field '{field}': architecture {choice.name!r}: {exc}")
    return problems


def model_name_field(choices: Sequence[ArchitectureChoice]) -> FormField:
    """The ``model_name`` form field, with the task's architectures as its choices."""
    return FormField(
        name=MODEL_NAME_FIELD,
        description="The architecture of the submitted weights, one of the task's list.",
        choices=tuple(choice.name for choice in choices),
    )


def chosen_architecture(
    choices: Sequence[ArchitectureChoice], fields: Mapping[str, str]
) -> ArchitectureChoice:
    """The architecture named by the ``model_name`` field; SubmissionError if none fits."""
    listed = ", ".join(repr(choice.name) for choice in choices)
    value = (fields.get(MODEL_NAME_FIELD) or "").strip()
    if not value:
        raise SubmissionError(MSG_NO_CHOICE.format(choices=listed))
    for choice in choices:
        if choice.name == value:
            return choice
    raise SubmissionError(MSG_BAD_CHOICE.format(value=value, choices=listed))


def load_submitted_model(
    choices: Sequence[ArchitectureChoice], *, file: Path, fields: Mapping[str, str]
) -> nn.Module:
    """Read submitted weights into the chosen architecture, strictly, in eval mode.

    Raises
    ------
    SubmissionError
        If ``model_name`` is missing or not listed, if the file is not a readable safetensors
        or ``.pt`` state dict (a pickle that would run code is refused without running it), or
        if the weights do not fit the architecture exactly (the message names each missing,
        unexpected or mis-shaped parameter).
    """
    choice = chosen_architecture(choices, fields)
    try:
        state_dict = read_state_dict(file)
    except TrustlabError as exc:
        raise SubmissionError(MSG_UNREADABLE.format(error=exc)) from None
    model = choice.build()
    try:
        load_state_dict_strict(model, state_dict)
    except TrustlabError as exc:
        raise SubmissionError(MSG_DOES_NOT_FIT.format(name=choice.name, error=exc)) from None
    model.eval()
    return model

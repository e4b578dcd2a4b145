"""The HTML pages' templates (Jinja2, autoescaped), read from the package."""

from __future__ import annotations

from importlib import resources
from typing import Any

from jinja2 import Environment, FunctionLoader, select_autoescape


def _template(name: str) -> str:
    return (resources.files("trustlab.server") / "templates" / name).read_text(encoding="utf-8")


_ENV = Environment(
    loader=FunctionLoader(_template),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(name: str, **context: Any) -> str:
    """The template ``name`` rendered with ``context``."""
    return _ENV.get_template(name).render(**context)

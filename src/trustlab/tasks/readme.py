"""The ``README.md`` artefact of every task kind, rendered from a Jinja2 template.

Each kind ships one template, ``templates/<kind>_readme.md.j2`` (``<kind>`` is the kind's
``name``, e.g. ``model-extraction``), as package data. A kind builds the context (numbers,
names, lists) and :func:`render_readme` lays it out. Templates are Markdown, so nothing is
HTML-escaped; a missing variable is an error rather than an empty string. Numbers are
formatted in the template with the ``fmt`` filter, which applies a Python format
specification: ``{{ accuracy | fmt(".3f") }}``, ``{{ fraction | fmt(".0%") }}``; ``code``
wraps a value in backticks (``{{ names | map("code") | join(", ") }}``) and ``json`` writes
it as JSON with sorted keys.

Examples
--------
>>> from trustlab.tasks.readme import render_readme
>>> text = render_readme("robustness", context={"spec": spec, ...})  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import jinja2

TEMPLATE_PACKAGE = "trustlab.tasks"
TEMPLATE_FOLDER = "templates"


def template_name(kind: str) -> str:
    """The file name of a kind's README template.

    Examples
    --------
    >>> template_name("model-extraction")
    'model-extraction_readme.md.j2'
    """
    return f"{kind}_readme.md.j2"


def _fmt(value: Any, spec: str = "") -> str:
    return format(value, spec)


def _code(value: Any) -> str:
    return f"`{value}`"


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


@functools.cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader(TEMPLATE_PACKAGE, TEMPLATE_FOLDER),
        # Markdown is not HTML: only HTML or XML templates would be escaped.
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "xml"), default=False),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(fmt=_fmt, code=_code, json=_json)
    return environment


def render_readme(kind: str, *, context: Mapping[str, Any]) -> str:
    """Render the README template of the task kind ``kind`` with ``context``.

    Parameters
    ----------
    kind : str
        The kind's ``name``; picks ``templates/<kind>_readme.md.j2``.
    context : mapping of str to object
        The template's variables.

    Returns
    -------
    str
        The README's Markdown text, ending with a newline.

    Raises
    ------
    jinja2.TemplateNotFound
        If the kind ships no README template.
    jinja2.UndefinedError
        If the template uses a variable the context lacks.
    """
    return _environment().get_template(template_name(kind)).render(context)

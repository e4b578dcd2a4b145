"""The report's three files: ``report.html`` (self-contained), ``report.json`` and ``report.md``.

The HTML inlines its style and its figures (PNG as ``data:`` URIs), loads nothing from the
network and needs no JavaScript. The JSON holds every number (NaN and infinities become
``null``, so any JSON parser reads it). The Markdown is the summary and the tables, for a pull
request comment. :func:`write_report` renders all three in memory first and then moves each
into place from a temporary file, so a failure leaves no half-written report.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from jinja2 import Environment, select_autoescape

from trustlab.audit.report import AuditReport, Cell

__all__ = ["REPORT_FILES", "render_html", "render_json", "render_markdown", "write_report"]

REPORT_FILES = ("report.html", "report.json", "report.md")
LIGHT_SYMBOL = {"green": "🟢", "amber": "🟠", "red": "🔴", "grey": "⚪"}


def _clean(value: Any) -> Any:
    """NaN and infinities as None, recursively (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def render_json(report: AuditReport) -> str:
    return json.dumps(_clean(report.to_dict()), indent=2, allow_nan=False, sort_keys=False) + "\n"


def format_cell(value: Cell) -> str:
    """A table cell as text: floats to 4 significant digits."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(_md_escape(c) for c in columns) + " |"]
    lines.append("|" + "|".join("---" for _ in columns) + "|")
    lines += ["| " + " | ".join(_md_escape(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(report: AuditReport) -> str:
    """The summary, then each section's status, notes and tables (figures: see the HTML)."""
    model = report.model
    lines = [
        "# trustlab audit",
        "",
        f"Model `{model['source']}` ({model['kind']}, {model['n_parameters']} parameters) on "
        f"data `{report.data['name']}` ({report.data['n_examples']} examples), profile "
        f"`{report.profile}`, trustlab {report.trustlab_version}.",
        "",
        "## Summary",
        "",
    ]
    lines += _md_table(
        ["", "section", "result", "thresholds"],
        [
            [LIGHT_SYMBOL[line.light] + " " + line.light, line.title, line.headline, line.rule]
            for line in report.summary
        ],
    )
    for section in report.sections:
        lines += ["", f"## {section.title}", ""]
        if section.status != "ok":
            status = "not available" if section.status == "not_available" else "failed"
            lines += [f"**{status}**: {section.reason}"]
            continue
        for note in section.notes:
            lines.append(f"- {note}")
        for table in section.tables:
            lines += ["", f"**{table.title}**", ""]
            lines += _md_table(table.columns, [[format_cell(c) for c in row] for row in table.rows])
        if section.figures:
            lines += ["", f"_{len(section.figures)} figure(s) in report.html._"]
    return "\n".join(lines) + "\n"


HTML_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>trustlab audit: {{ report.model.source }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto;
       max-width: 1100px; padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2rem;
     margin-top: 2.2rem; }
table { border-collapse: collapse; margin: 0.8rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.55rem; text-align: left;
         vertical-align: top; }
th { background: #f3f3f5; }
.meta { color: #555; font-size: 0.9rem; }
.light { display: inline-block; width: 0.95rem; height: 0.95rem; border-radius: 50%;
         vertical-align: middle; margin-right: 0.35rem; border: 1px solid #888; }
.green { background: #2e9d4b; } .amber { background: #f0a020; } .red { background: #d33c32; }
.grey { background: #c8c8c8; }
.status { font-weight: 600; } .reason { color: #444; }
figure { display: inline-block; margin: 0.6rem 1.2rem 0.6rem 0; vertical-align: top; }
figure img { max-width: 520px; border: 1px solid #eee; }
figcaption { font-size: 0.85rem; color: #444; max-width: 520px; }
.notes li { font-size: 0.9rem; color: #333; }
code { background: #f3f3f5; padding: 0 0.2rem; }
</style>
</head>
<body>
<h1>trustlab audit</h1>
<p class="meta">Model <code>{{ report.model.source }}</code> ({{ report.model.kind }},
{{ report.model.n_parameters }} parameters{% if report.model.architecture %}, architecture
<code>{{ report.model.architecture }}</code>{% endif %}) &middot; data
<code>{{ report.data.name }}</code> ({{ report.data.n_examples }} examples) &middot; profile
<code>{{ report.profile }}</code> &middot; trustlab {{ report.trustlab_version }} &middot;
report schema {{ report.schema_version }}</p>

<h2 id="summary">Summary</h2>
<table>
<tr><th>light</th><th>section</th><th>result</th><th>thresholds</th></tr>
{% for line in report.summary %}
<tr><td><span class="light {{ line.light }}" role="img"
 aria-label="{{ line.light }}"></span>{{ line.light }}</td>
<td><a href="#{{ line.section }}">{{ line.title }}</a></td><td>{{ line.headline }}</td>
<td>{{ line.rule }}</td></tr>
{% endfor %}
</table>
<p class="meta">Thresholds are rules of thumb, shown beside every light; change them with
<code>--threshold NAME=GREEN,AMBER</code>. Every number is in <code>report.json</code>.</p>

{% for section in report.sections %}
<h2 id="{{ section.name }}">{{ section.title }}</h2>
{% if section.status != "ok" %}
<p><span class="status">{{ "not available" if section.status == "not_available"
 else "failed" }}</span>:
<span class="reason">{{ section.reason }}</span></p>
{% else %}
{% if section.notes %}<ul class="notes">
{% for note in section.notes %}<li>{{ note }}</li>{% endfor %}
</ul>{% endif %}
{% for table in section.tables %}
<table>
<caption style="text-align:left;font-weight:600;padding:0.2rem 0">{{ table.title }}</caption>
<tr>{% for column in table.columns %}<th>{{ column }}</th>{% endfor %}</tr>
{% for row in table.rows %}<tr>{% for cell in row %}<td>{{ fmt(cell) }}</td>{% endfor %}</tr>
{% endfor %}
</table>
{% endfor %}
{% for figure in section.figures %}
<figure><img src="data:image/png;base64,{{ figure.png_base64 }}" alt="{{ figure.alt }}">
<figcaption>{{ figure.title }}: {{ figure.alt }}</figcaption></figure>
{% endfor %}
<p class="meta">{{ "read from the cache" if section.cached
 else "ran in %.1f s" % section.seconds }}</p>
{% endif %}
{% endfor %}
</body>
</html>
"""


def render_html(report: AuditReport) -> str:
    """The self-contained HTML report."""
    environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = environment.from_string(HTML_TEMPLATE)
    return template.render(report=report, fmt=format_cell)


def write_report(report: AuditReport, out_dir: Path) -> dict[str, Path]:
    """Write ``report.html``, ``report.json`` and ``report.md`` into ``out_dir``.

    All three are rendered first; each is then written to a temporary file in ``out_dir`` and
    renamed into place, so readers never see a partial file.
    """
    texts = {
        "report.html": render_html(report),
        "report.json": render_json(report),
        "report.md": render_markdown(report),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[str, Path]] = []
    try:
        for name, text in texts.items():
            handle, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{name}.", suffix=".tmp")
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.chmod(tmp, 0o644)
            staged.append((tmp, out_dir / name))
        for tmp, final in staged:
            os.replace(tmp, final)
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return {name: out_dir / name for name in texts}

"""The README's quick start and course notes stay true (findings of a first-time user)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def code_blocks(text: str) -> list[str]:
    return re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.DOTALL)


def test_the_first_two_commands_are_make_targets() -> None:
    first = code_blocks(README)[0].splitlines()
    assert [line.split("#")[0].strip() for line in first[:2]] == ["make demo", "make test"]
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"(?m)^demo:", makefile) and re.search(r"(?m)^test:", makefile)


def test_every_submitted_scores_file_is_created_first() -> None:
    for block in code_blocks(README):
        for match in re.finditer(r"submit\((?:\"[^\"]+\"), \"([^\"]+\.csv)\"", block):
            name = match.group(1)
            created = f'open("{name}", "w")' in block[: match.start()]
            assert created or name.startswith("artefacts/"), block
        for match in re.finditer(r"trustlab submit \S+ (\S+\.csv)", block):
            assert match.group(1).startswith("artefacts/") or "sample" in match.group(1), block


def test_the_readme_documents_ports_fields_and_single_file_onnx() -> None:
    assert "trustlab demo --port" in README and "TRUSTLAB_PORT" in README
    assert 'fields={"model_name": ' in README
    assert "save_as_external_data=False" in README
    assert "trustlab task new" in README and "params.data_file" in README


def test_no_doc_promises_scoring_in_a_few_seconds() -> None:
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        assert "a few seconds" not in text, path

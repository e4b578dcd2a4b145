"""Reading submitted CSV files row by row, with errors that name the line to fix.

Shared by every kind whose submission is one CSV row per id: ``membership-inference`` and
``ood-detection`` (``id,score``) and ``conformal`` (prediction sets). ``noun`` names the ids in
the messages ("candidate id", "test id") and ``artifact`` the file that lists them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from trustlab.core.errors import SubmissionError

MSG_EMPTY = (
    "The file is empty. Submit a CSV whose first line is the header {header!r}, followed by "
    "one line per {noun} ({n} lines)."
)
MSG_ENCODING = "The file is not UTF-8 text (byte {pos}); save the CSV as UTF-8."
MSG_CSV = "Line {line}: the file is not valid CSV ({error}); save it as plain CSV lines."
MSG_NO_HEADER = (
    "Line 1 must be the header {header!r}; found {found!r}{hint}. Add the header line "
    "{header!r} at the top of the file."
)
HINT_DATA_ROW = ", which looks like a data row"
MSG_FIELDS = "Line {line}: expected {expected} comma-separated values, found {count}."
MSG_BAD_ID = "Line {line}: id {value!r} is not an integer {noun}."
MSG_BAD_SCORE = "Line {line}: score {value!r} for id {id} is not a number; give a finite number."
MSG_NONFINITE = "Line {line}: score for id {id} is {value}; every score must be a finite number."
MSG_DUPLICATE = (
    "Line {line}: id {id} appears a second time (first on line {first}); give each {noun} "
    "exactly once."
)
MSG_UNKNOWN = "Line {line}: id {id} is not a {noun}; use the ids from {artifact}."
MSG_MISSING = (
    "{count} {noun}(s) have no row, e.g. {examples}; give a row for every id in {artifact} "
    "({n} ids)."
)


def decode(data: bytes) -> str:
    """The file as text; a file that is not UTF-8 is refused, naming the byte."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SubmissionError(MSG_ENCODING.format(pos=exc.start)) from None


def csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """``(line_number, cells)`` of every non-blank row; a malformed line is refused.

    A leading byte-order mark is dropped; ``\\r\\n`` and a lone ``\\r`` (old spreadsheet
    exports) both end a line.
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=None))
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise SubmissionError(
                MSG_CSV.format(line=reader.line_num, error=str(exc)[:120])
            ) from None
        if row and any(cell.strip() for cell in row):
            yield reader.line_num, row


def read_header(
    rows: Iterator[tuple[int, list[str]]], *, header: str, n: int, noun: str = "test id"
) -> list[str]:
    """The header row, lower-cased and stripped; an empty file is refused."""
    first = next(rows, None)
    if first is None:
        raise SubmissionError(MSG_EMPTY.format(header=header, n=n, noun=noun))
    return [cell.strip().lower() for cell in first[1]]


def refuse_header(header: list[str], *, expected: str) -> SubmissionError:
    """The error for a wrong header line, with a hint where it looks like a data row."""
    hint = HINT_DATA_ROW if header and header[0].lstrip("-").isdigit() else ""
    return SubmissionError(
        MSG_NO_HEADER.format(header=expected, found=",".join(header)[:80], hint=hint)
    )


def parse_id(raw: str, *, line: int, noun: str = "test id") -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise SubmissionError(
            MSG_BAD_ID.format(line=line, value=raw.strip()[:40], noun=noun)
        ) from None


class IdTracker:
    """Checks that every id is known and given once, and at the end that none is missing."""

    def __init__(self, ids: np.ndarray, *, artifact: str, noun: str = "test id") -> None:
        self.known = set(ids.tolist())
        self.first_line: dict[int, int] = {}
        self.artifact = artifact
        self.noun = noun

    def add(self, ident: int, *, line: int) -> None:
        if ident in self.first_line:
            raise SubmissionError(
                MSG_DUPLICATE.format(
                    line=line, id=ident, first=self.first_line[ident], noun=self.noun
                )
            )
        if ident not in self.known:
            raise SubmissionError(
                MSG_UNKNOWN.format(line=line, id=ident, artifact=self.artifact, noun=self.noun)
            )
        self.first_line[ident] = line

    def finish(self) -> None:
        if len(self.first_line) != len(self.known):
            missing = sorted(self.known - self.first_line.keys())
            examples = ", ".join(str(i) for i in missing[:5])
            raise SubmissionError(
                MSG_MISSING.format(
                    count=len(missing),
                    examples=examples,
                    artifact=self.artifact,
                    n=len(self.known),
                    noun=self.noun,
                )
            )


def read_scores(
    text: str, *, ids: np.ndarray, artifact: str = "test.npz", noun: str = "test id"
) -> dict[int, float]:
    """Parse an ``id,score`` CSV with one finite score per id of ``ids``.

    Raises
    ------
    SubmissionError
        Naming the line and what to fix for the first problem found.
    """
    rows = csv_rows(text)
    header = read_header(rows, header="id,score", n=len(ids), noun=noun)
    if header != ["id", "score"]:
        raise refuse_header(header, expected="id,score")
    tracker = IdTracker(ids, artifact=artifact, noun=noun)
    scores: dict[int, float] = {}
    for line, row in rows:
        if len(row) != 2:
            raise SubmissionError(MSG_FIELDS.format(line=line, expected=2, count=len(row)))
        ident = parse_id(row[0], line=line, noun=noun)
        raw = row[1].strip()
        try:
            score = float(raw)
        except ValueError:
            raise SubmissionError(
                MSG_BAD_SCORE.format(line=line, value=raw[:40], id=ident)
            ) from None
        if not math.isfinite(score):
            raise SubmissionError(MSG_NONFINITE.format(line=line, id=ident, value=raw))
        tracker.add(ident, line=line)
        scores[ident] = score
    tracker.finish()
    return scores


def summary(values: dict[int, Any]) -> dict[str, Any]:
    return {"rows": len(values)}

"""Reading submitted prediction sets: class lists (``id,labels``) or a 0/1 matrix."""

from __future__ import annotations

import numpy as np

from trustlab.core.errors import SubmissionError
from trustlab.tasks._csv import (
    IdTracker,
    csv_rows,
    parse_id,
    read_header,
)

MSG_HEADER = (
    "Line 1 must be the header 'id,labels' (class lists) or 'id,{columns}' (a 0/1 column per "
    "class); found {found!r}."
)
MSG_FIELDS = "Line {line}: expected {expected} comma-separated values, found {count}."
MSG_LABEL = (
    "Line {line}: {value!r} in the set of id {id} is not a class; give class indices 0 to "
    "{top}, separated by spaces (e.g. '3 7'), or leave the field empty for an empty set."
)
MSG_REPEATED = "Line {line}: class {label} appears twice in the set of id {id}; list it once."
MSG_CELL = (
    "Line {line}: column {column} of id {id} holds {value!r}; every class column holds 0 or 1."
)


def read_sets(text: str, *, ids: np.ndarray, n_classes: int) -> dict[int, np.ndarray]:
    """Parse prediction sets, one row per test id, into boolean vectors of ``n_classes``.

    Two formats, told apart by the header:

    * ``id,labels``: the set's class indices separated by spaces (``3 7``), empty for an
      empty set;
    * ``id,0,1,...,K-1``: one 0/1 column per class.

    Raises
    ------
    SubmissionError
        Naming the line and what to fix for the first problem found.
    """
    rows = csv_rows(text)
    columns = ",".join(str(k) for k in range(n_classes))
    header = read_header(rows, header="id,labels", n=len(ids))
    if header == ["id", "labels"]:
        as_lists = True
    elif header == ["id", *[str(k) for k in range(n_classes)]]:
        as_lists = False
    else:
        raise SubmissionError(MSG_HEADER.format(columns=columns, found=",".join(header)[:80]))
    tracker = IdTracker(ids, artifact="test.npz")
    sets: dict[int, np.ndarray] = {}
    expected = 2 if as_lists else n_classes + 1
    for line, row in rows:
        if len(row) != expected:
            raise SubmissionError(MSG_FIELDS.format(line=line, expected=expected, count=len(row)))
        ident = parse_id(row[0], line=line)
        members = np.zeros(n_classes, dtype=bool)
        if as_lists:
            for token in row[1].split():
                try:
                    label = int(token)
                except ValueError:
                    label = -1
                if not 0 <= label < n_classes:
                    raise SubmissionError(
                        MSG_LABEL.format(line=line, value=token[:20], id=ident, top=n_classes - 1)
                    )
                if members[label]:
                    raise SubmissionError(MSG_REPEATED.format(line=line, label=label, id=ident))
                members[label] = True
        else:
            for column, cell in enumerate(row[1:]):
                value = cell.strip()
                if value not in ("0", "1"):
                    raise SubmissionError(
                        MSG_CELL.format(line=line, column=column, id=ident, value=value[:20])
                    )
                members[column] = value == "1"
        tracker.add(ident, line=line)
        sets[ident] = members
    tracker.finish()
    return sets

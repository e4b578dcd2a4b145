"""The error the service layer raises, its JSON shape, and keeping server paths out of it."""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import BaseModel

MSG_OVERLOADED = (
    "The arena is busy ({what}); this is no fault of your request, nothing was stored and "
    "nothing counted against your team. Send it again in {retry} s."
)


class ErrorDetail(BaseModel):
    """The body of every error response: what is wrong and how to fix it."""

    detail: str


class ApiError(Exception):
    """An HTTP error with a message that says what is wrong and how to fix it."""

    def __init__(
        self, status_code: int, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers or {}


def overloaded(what: str, *, retry: int) -> ApiError:
    """503 with ``Retry-After``: the server, not the team, is short of capacity."""
    return ApiError(
        503, MSG_OVERLOADED.format(what=what, retry=retry), headers={"Retry-After": str(retry)}
    )


# An absolute path of at least two parts, not inside a word, URL or relative path.
_ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/-])/(?:[\w.+@-]+/)+([\w.+@-]*)")


def scrub_paths(message: str, *, known: Mapping[str, str] | None = None) -> str:
    """``message`` without the server's file paths.

    Each path in ``known`` is replaced by the name it maps to (the longest first, e.g. an
    upload's temporary file by the name the team gave it); any other absolute path by its
    last part. Meant for messages that come from work on a file (intake, scoring), not for
    the API's own messages, which may name URL paths.
    """
    for path in sorted(known or {}, key=len, reverse=True):
        if path:
            message = message.replace(path, (known or {})[path])
    return _ABSOLUTE_PATH.sub(lambda m: m.group(1) or "...", message)

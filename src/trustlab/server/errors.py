"""The error the service layer raises; the app renders it as ``{"detail": ...}``."""

from __future__ import annotations


class ApiError(Exception):
    """An HTTP error with a message that says what is wrong and how to fix it."""

    def __init__(
        self, status_code: int, detail: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.headers = headers or {}

"""The exceptions every part of trustlab raises.

Each error carries a message that says what is wrong and what to do about it. The CLI turns
them into one line on stderr; the server turns them into ``{"detail": ...}`` with the status
code that :attr:`TrustlabError.status_code` suggests.
"""

from __future__ import annotations


class TrustlabError(Exception):
    """Base class of trustlab's own errors. ``str(err)`` is the user-facing message."""

    status_code: int = 400


class ConfigurationError(TrustlabError, ValueError):
    """A parameter, spec field or setting has a value that cannot work."""

    status_code = 422


class UnknownNameError(TrustlabError, KeyError):
    """A name looked up in a registry (architecture, data set, task kind, ...) does not exist."""

    status_code = 404

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(TrustlabError, ValueError):
    """A name was registered twice in the same registry."""


class DataError(TrustlabError, ValueError):
    """Input data has the wrong shape, type or values (NaN, infinities, empty arrays, ...)."""


class WeightsError(TrustlabError, ValueError):
    """A weights file is unreadable, unsafe, or does not match the architecture."""


class SubmissionError(TrustlabError, ValueError):
    """A submitted file fails validation; the message names the row or field to fix."""

    status_code = 400


class SandboxError(TrustlabError, RuntimeError):
    """Work run in a limited child process crashed, ran out of time or out of memory."""

    status_code = 500


class InternalJobError(SandboxError):
    """Work in a limited child process failed on a bug, not on its input."""

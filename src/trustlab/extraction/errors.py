"""Errors specific to model extraction."""

from __future__ import annotations

from trustlab.core.errors import TrustlabError

__all__ = ["BudgetExhaustedError"]


class BudgetExhaustedError(TrustlabError):
    """A batch of queries would take an oracle past its query budget.

    The oracle refuses the whole batch before answering any of it, so a refused batch costs
    nothing; ask for fewer rows (``oracle.queries_remaining`` says how many are left).
    """

    status_code = 429

"""The accounts a run uses, and the credits the client saw each of them charged.

Charges come only from what successful responses say: ``tokens_used`` of an analysis,
the configured story cost for a story (its response carries token counts, not
credits), ``credits_charged`` of a finished job. A response marked
``Idempotent-Replayed`` is free. An operation whose outcome the client could not see
(no answer, or cut off at the end of the run) is counted as *unknown*: it may or may
not have been charged, so that account cannot be reconciled exactly.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Role = Literal["payer", "drained", "admin"]


@dataclass(frozen=True)
class Account:
    """A user the load test acts as.

    Attributes:
        role: ``payer`` (enough credits for the run), ``drained`` (runs out, so 402s
            happen), ``admin`` (free; polls ``/api/stats``).
        username: The account's name (resolved with ``GET /api/me`` when unknown).
    """

    role: Role
    username: str
    token: str


@dataclass
class Book:
    """Opening balances, observed charges and unknown outcomes per username."""

    start: dict[str, int] = field(default_factory=dict)
    admin: dict[str, bool] = field(default_factory=dict)
    charged: Counter[str] = field(default_factory=Counter)
    unknown: Counter[str] = field(default_factory=Counter)
    #: Paid operations that succeeded, per username (replays excluded).
    paid_ops: Counter[str] = field(default_factory=Counter)

    def open(self, username: str, balance: int, is_admin: bool) -> None:
        self.start[username] = balance
        self.admin[username] = is_admin

    def charge(self, username: str, credits: int) -> None:
        self.charged[username] += credits
        self.paid_ops[username] += 1

    def lost(self, username: str) -> None:
        """An operation of ``username`` whose outcome is unknown."""
        self.unknown[username] += 1

    def expected(self, username: str) -> int:
        return self.start[username] - self.charged[username]

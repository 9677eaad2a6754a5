"""Charge for one operation: reserve → run → capture, or release on any failure.

Usage in a route::

    async with charge(accounts, user, idempotency_key=key, fingerprint=fp) as handle:
        if handle.replay is not None:
            return replay_response(handle.replay)   # first response, not charged again
        outcome = await run_the_work()
        body = {..., "tokens_used": handle.cost, "remaining_tokens": handle.remaining}
        handle.record(body)
    return body

Leaving the block normally captures the reservation and stores the recorded response
for ``Idempotency-Key`` replays, in one transaction. Leaving it by any exception
(including a timeout or the client going away) releases the credits exactly once
and forgets the key, so a retry runs again. The database writes at the end run to
completion in a worker thread even if the awaiting task is cancelled.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.credits import Reservation, capture_in, release_in
from serve_app.accounts.idempotency import (
    StoredResponse,
    abandon_in,
    complete_in,
    validate_key,
)
from serve_app.accounts.users import User
from serve_app.errors import Conflict
from serve_app.observability import metrics
from serve_app.threads import run_to_completion

logger = logging.getLogger(__name__)


@dataclass
class ChargeHandle:
    """What the charged block sees.

    Attributes:
        cost: Credits charged (0 for admins and replays).
        remaining: The balance after this charge.
        replay: The stored first response when this is a repeat of an
            ``Idempotency-Key`` request; the block must return it and do nothing else.
    """

    cost: int
    remaining: int
    replay: StoredResponse | None = None
    _response: StoredResponse | None = field(default=None, repr=False)

    def record(self, body: Any, status_code: int = 200) -> None:
        """The JSON body (and status) to replay for repeats of this request."""
        self._response = StoredResponse(status_code=status_code, body=body)


@asynccontextmanager
async def charge(
    accounts: AccountsContext,
    user: User,
    *,
    cost: int | None = None,
    reason: str = "analysis",
    idempotency_key: str | None = None,
    fingerprint: str = "",
) -> AsyncIterator[ChargeHandle]:
    """Reserve ``cost`` (default: ``analysis_cost``; admins pay nothing) around a block.

    Raises:
        InsufficientCredits: before the block runs; nothing is charged.
        IdempotencyKeyReused: the key was used with a different ``fingerprint``.
        Conflict: a request with the same key is still running.
        InvalidRequest: a malformed key.
    """
    if accounts.maintenance.due():
        asyncio.get_running_loop().run_in_executor(None, accounts.maintenance.run)
    amount = 0 if user.is_admin else (accounts.settings.analysis_cost if cost is None else cost)
    key = validate_key(idempotency_key) if idempotency_key is not None else None
    record_id: int | None = None
    if key is not None:
        claim = await asyncio.to_thread(accounts.idempotency.begin, user.id, key, fingerprint)
        if isinstance(claim, StoredResponse):
            yield ChargeHandle(cost=0, remaining=user.balance, replay=claim)
            return
        record_id = claim

    reservation: Reservation | None = None
    try:
        if amount > 0:
            reservation = await asyncio.to_thread(
                accounts.credits.reserve, user.id, amount, reason, key
            )
            if reservation.reused:
                # Paid for earlier under this key, whose stored response has expired.
                reservation = None
                raise Conflict("this Idempotency-Key has already been used; send a new key")
    except BaseException:
        if record_id is not None:
            await run_to_completion(lambda: _finish(accounts, None, record_id, None, ok=False))
        raise

    handle = ChargeHandle(
        cost=amount, remaining=reservation.balance_after if reservation else user.balance
    )
    try:
        yield handle
    except BaseException:
        await run_to_completion(lambda: _finish(accounts, reservation, record_id, None, ok=False))
        raise
    response = handle._response or StoredResponse(status_code=200, body=None)
    await run_to_completion(lambda: _finish(accounts, reservation, record_id, response, ok=True))
    if reservation is not None:
        metrics.record_credits_charged(reason, amount)


def _finish(
    accounts: AccountsContext,
    reservation: Reservation | None,
    record_id: int | None,
    response: StoredResponse | None,
    *,
    ok: bool,
) -> None:
    """Capture + store the response, or release + forget the key: one transaction."""
    with accounts.database.transaction() as session:
        if reservation is not None:
            moved = (
                capture_in(session, reservation.id) if ok else release_in(session, reservation.id)
            )
            if not moved:
                logger.warning(
                    "reservation %s was no longer reserved at %s",
                    reservation.id,
                    "capture" if ok else "release",
                )
        if record_id is not None:
            if ok and response is not None:
                complete_in(session, record_id, response)
            else:
                abandon_in(session, record_id)

"""Settling the credit reservations of video jobs (prices: :mod:`serve_app.jobs.rules`).

A job reserves its estimated cost (frames times the per-model price), then on success
captures the actual cost: the reservation becomes ``captured`` and any excess comes
back in the same transaction as one ``refund`` ledger row. On failure or cancel the
whole reservation is released. Every step is a guarded state transition
(``state = 'reserved'``), so a repeat or a late write from an old attempt moves
nothing.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from serve_app.accounts.credits import ReservationState, capture_in, reserve_in
from serve_app.accounts.models import CreditLedgerRow, ReservationRow, UserRow
from serve_app.errors import InsufficientCredits
from serve_app.storage.orm import utcnow

logger = logging.getLogger(__name__)


def settle_in(session: Session, reservation_id: str, amount: int) -> int | None:
    """Capture ``amount`` (at most the reserved cost) and refund the rest.

    Returns the credits charged, or None (nothing changes) when the reservation was
    not ``reserved``.
    """
    row = session.execute(
        select(ReservationRow.user_id, ReservationRow.cost, ReservationRow.reason).where(
            ReservationRow.id == reservation_id
        )
    ).one_or_none()
    if row is None or not capture_in(session, reservation_id):
        return None
    refund = row.cost - max(0, min(amount, row.cost))
    if refund > 0:
        connection = session.connection()
        connection.execute(
            update(UserRow)
            .where(UserRow.id == row.user_id)
            .values(balance=UserRow.balance + refund)
        )
        connection.execute(
            update(ReservationRow)
            .where(ReservationRow.id == reservation_id)
            .values(cost=row.cost - refund, updated_at=utcnow())
        )
        session.add(
            CreditLedgerRow(
                user_id=row.user_id,
                delta=refund,
                kind="refund",
                reason=row.reason,
                reservation_id=reservation_id,
            )
        )
        session.flush()
    return row.cost - refund


def charge_in(
    session: Session, reservation_id: str, user_id: int, amount: int
) -> tuple[int, str] | None:
    """Settle ``reservation_id`` for ``amount``; returns ``(charged, reservation id)``.

    A running job's hold carries the job's lease, so the accounts sweeps leave it alone;
    should it have been released anyway (an attempt that lost its lease and finished
    late is fenced before this), ``amount`` is charged afresh, in a savepoint, if the
    balance still covers it. Returns None when nothing could be charged.
    """
    charged = settle_in(session, reservation_id, amount)
    if charged is not None:
        return charged, reservation_id
    state = session.scalar(select(ReservationRow.state).where(ReservationRow.id == reservation_id))
    if state != ReservationState.RELEASED.value or amount <= 0:
        return None
    reason = session.scalar(
        select(ReservationRow.reason).where(ReservationRow.id == reservation_id)
    )
    try:
        with session.begin_nested():
            fresh = reserve_in(session, user_id, amount, reason or "video job")
            capture_in(session, fresh.id)
    except InsufficientCredits:
        logger.warning(
            "reservation %s was released early and cannot be charged again", reservation_id
        )
        return None
    return amount, fresh.id

"""Credits: a balance per user, changed only together with one ledger row.

A paid operation reserves its cost first (one conditional ``UPDATE``: nobody can go
below zero, however many requests race), then either captures the reservation (the
operation succeeded) or releases it (credits return). State transitions are
conditional updates on ``state = 'reserved'``, so repeating ``capture`` or ``release``
is harmless, and a reservation can be released at most once (unique ledger row per
reservation and kind). Reservations left ``reserved`` by a crashed process are
released by :meth:`Credits.release_expired` once their lease has passed, or, without a
lease, by :meth:`Credits.release_stale` after the reservation timeout.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, and_, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serve_app.accounts.models import CreditLedgerRow, ReservationRow, UserRow
from serve_app.errors import InsufficientCredits, InvalidRequest, NotFound
from serve_app.storage.db import Database
from serve_app.storage.orm import utcnow

logger = logging.getLogger(__name__)

#: Concurrent inserts of the same idempotency key: the loser retries and finds the winner.
_RESERVE_ATTEMPTS = 3


class ReservationState(enum.StrEnum):
    RESERVED = "reserved"
    CAPTURED = "captured"
    RELEASED = "released"


@dataclass(frozen=True)
class Reservation:
    """Credits held for one operation.

    Attributes:
        balance_after: The balance right after this reservation was made.
        reused: True when an earlier reservation with the same idempotency key was
            returned instead of charging again.
    """

    id: str
    user_id: int
    cost: int
    state: ReservationState
    balance_after: int
    reused: bool = False


def _rowcount(result: Any) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def _balance(session: Session, user_id: int) -> int:
    balance = session.scalar(select(UserRow.balance).where(UserRow.id == user_id))
    if balance is None:
        raise NotFound("no such user")
    return int(balance)


def grant_in(session: Session, user_id: int, amount: int, reason: str) -> int:
    """Add ``amount`` (negative takes away, never below zero); returns the new balance.

    Raises:
        InsufficientCredits: a negative amount exceeds the balance.
        NotFound: no such user.
    """
    if amount == 0:
        raise InvalidRequest("a grant must change the balance")
    stmt = update(UserRow).where(UserRow.id == user_id).values(balance=UserRow.balance + amount)
    if amount < 0:
        stmt = stmt.where(UserRow.balance >= -amount)
    if _rowcount(session.connection().execute(stmt)) != 1:
        balance = _balance(session, user_id)
        raise InsufficientCredits(f"cannot take {-amount} credits from a balance of {balance}")
    session.add(CreditLedgerRow(user_id=user_id, delta=amount, kind="grant", reason=reason[:200]))
    session.flush()
    return _balance(session, user_id)


def reserve_in(
    session: Session,
    user_id: int,
    cost: int,
    reason: str,
    idempotency_key: str | None = None,
    lease_s: float | None = None,
) -> Reservation:
    """Reserve ``cost`` credits in ``session``'s transaction (see :meth:`Credits.reserve`)."""
    if cost <= 0:
        raise ValueError("a reservation costs at least one credit")
    if idempotency_key is not None:
        existing = session.scalar(
            select(ReservationRow).where(
                ReservationRow.user_id == user_id,
                ReservationRow.idempotency_key == idempotency_key,
            )
        )
        if existing is not None:
            return Reservation(
                existing.id,
                user_id,
                existing.cost,
                ReservationState(existing.state),
                _balance(session, user_id),
                reused=True,
            )
    taken = session.connection().execute(
        update(UserRow)
        .where(UserRow.id == user_id, UserRow.balance >= cost)
        .values(balance=UserRow.balance - cost)
    )
    if _rowcount(taken) != 1:
        balance = _balance(session, user_id)
        raise InsufficientCredits(
            f"insufficient credits: this costs {cost} credits and your balance is {balance}"
        )
    now = utcnow()
    reservation_id = uuid.uuid4().hex
    session.add(
        ReservationRow(
            id=reservation_id,
            user_id=user_id,
            cost=cost,
            reason=reason[:200],
            state=ReservationState.RESERVED.value,
            idempotency_key=idempotency_key,
            created_at=now,
            updated_at=now,
            lease_expires_at=None if lease_s is None else now + dt.timedelta(seconds=lease_s),
        )
    )
    session.flush()
    session.add(
        CreditLedgerRow(
            user_id=user_id,
            delta=-cost,
            kind="reserve",
            reason=reason[:200],
            reservation_id=reservation_id,
        )
    )
    session.flush()
    return Reservation(
        reservation_id, user_id, cost, ReservationState.RESERVED, _balance(session, user_id)
    )


def capture_in(session: Session, reservation_id: str) -> bool:
    """``reserved`` → ``captured``; False when it was not ``reserved`` (no change)."""
    result = session.connection().execute(
        update(ReservationRow)
        .where(
            ReservationRow.id == reservation_id,
            ReservationRow.state == ReservationState.RESERVED.value,
        )
        .values(state=ReservationState.CAPTURED.value, updated_at=utcnow())
    )
    return _rowcount(result) == 1


def release_in(session: Session, reservation_id: str) -> bool:
    """``reserved`` → ``released`` and the credits back; False when not ``reserved``."""
    result = session.connection().execute(
        update(ReservationRow)
        .where(
            ReservationRow.id == reservation_id,
            ReservationRow.state == ReservationState.RESERVED.value,
        )
        .values(state=ReservationState.RELEASED.value, idempotency_key=None, updated_at=utcnow())
    )
    if _rowcount(result) != 1:
        return False
    row = session.execute(
        select(ReservationRow.user_id, ReservationRow.cost, ReservationRow.reason).where(
            ReservationRow.id == reservation_id
        )
    ).one()
    session.connection().execute(
        update(UserRow).where(UserRow.id == row.user_id).values(balance=UserRow.balance + row.cost)
    )
    session.add(
        CreditLedgerRow(
            user_id=row.user_id,
            delta=row.cost,
            kind="release",
            reason=row.reason,
            reservation_id=reservation_id,
        )
    )
    session.flush()
    return True


class Credits:
    """Credit operations, each in its own transaction."""

    def __init__(self, database: Database) -> None:
        self._db = database

    def grant(self, user_id: int, amount: int, reason: str = "grant") -> int:
        """Add (or, negative, take away) credits; returns the new balance."""
        with self._db.transaction() as session:
            return grant_in(session, user_id, amount, reason)

    def reserve(
        self,
        user_id: int,
        cost: int,
        reason: str,
        idempotency_key: str | None = None,
        lease_s: float | None = None,
    ) -> Reservation:
        """Take ``cost`` credits from the balance and hold them.

        With ``idempotency_key``, a second call with the same key returns the first
        reservation (``reused=True``) and charges nothing, until that one is released.
        With ``lease_s`` the hold expires unless renewed (:meth:`renew_leases`) and
        :meth:`release_expired` releases it then.

        Raises:
            InsufficientCredits: the balance is below ``cost`` (nothing changes).
            NotFound: no such user.
        """
        for attempt in range(_RESERVE_ATTEMPTS):
            try:
                with self._db.transaction() as session:
                    return reserve_in(session, user_id, cost, reason, idempotency_key, lease_s)
            except IntegrityError:
                if idempotency_key is None or attempt == _RESERVE_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def capture(self, reservation: Reservation) -> bool:
        """Keep the reserved credits (the operation succeeded); idempotent."""
        with self._db.transaction() as session:
            return capture_in(session, reservation.id)

    def release(self, reservation: Reservation) -> bool:
        """Return the reserved credits (the operation failed); idempotent."""
        with self._db.transaction() as session:
            return release_in(session, reservation.id)

    def balance(self, user_id: int) -> int:
        with self._db.transaction() as session:
            return _balance(session, user_id)

    def ledger_sum(self, user_id: int) -> int:
        """Sum of the user's ledger; always equal to :meth:`balance`."""
        with self._db.transaction() as session:
            total = session.scalar(
                select(func.coalesce(func.sum(CreditLedgerRow.delta), 0)).where(
                    CreditLedgerRow.user_id == user_id
                )
            )
            return int(total or 0)

    def state(self, reservation_id: str) -> ReservationState | None:
        with self._db.transaction() as session:
            state = session.scalar(
                select(ReservationRow.state).where(ReservationRow.id == reservation_id)
            )
            return ReservationState(state) if state else None

    def renew_leases(self, reservation_ids: Collection[str], lease_s: float) -> int:
        """Push the leases of these held reservations ``lease_s`` into the future."""
        if not reservation_ids:
            return 0
        with self._db.transaction() as session:
            result = session.connection().execute(
                update(ReservationRow)
                .where(
                    ReservationRow.id.in_(list(reservation_ids)),
                    ReservationRow.state == ReservationState.RESERVED.value,
                )
                .values(lease_expires_at=utcnow() + dt.timedelta(seconds=lease_s))
            )
            return _rowcount(result)

    def release_expired(self, limit: int = 500) -> int:
        """Release held reservations whose lease ran out (their process is gone)."""
        expired = ReservationRow.lease_expires_at < utcnow()
        return self._release_held(expired, limit, "credit holds whose holder is gone")

    def release_stale(self, max_age: dt.timedelta, limit: int = 500) -> int:
        """Release reservations ``reserved`` for longer than ``max_age`` (crashed workers).

        A hold whose lease is still running is not stale, however old: its holder (a
        request, a running job) renews it and is alive.
        """
        now = utcnow()
        stale = and_(
            ReservationRow.created_at < now - max_age,
            or_(ReservationRow.lease_expires_at.is_(None), ReservationRow.lease_expires_at < now),
        )
        return self._release_held(stale, limit, "abandoned credit reservations")

    def _release_held(self, condition: Any, limit: int, what: str) -> int:
        """Release up to ``limit`` reservations still ``reserved`` that match ``condition``."""
        with self._db.transaction() as session:
            ids = session.scalars(
                select(ReservationRow.id)
                .where(ReservationRow.state == ReservationState.RESERVED.value, condition)
                .limit(limit)
            ).all()
        released = 0
        for reservation_id in ids:
            with self._db.transaction() as session:
                released += release_in(session, reservation_id)
        if released:
            logger.warning("released %d %s", released, what)
        return released

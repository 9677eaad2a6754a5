"""``Idempotency-Key``: the first successful response is stored and replayed.

Per user and key, one row records the request's fingerprint and, once it completes,
its status and JSON body. A repeat with the same fingerprint gets that response back
(and is not charged again); the same key with another fingerprint is refused (422); a
repeat while the first is still running is refused with 409 (the client retries
later). A failed first request leaves no record, so retrying it runs it again. A key
left ``in_flight`` by a crashed process may be taken over after ``stale_after``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from serve_app.accounts.models import IdempotencyKeyRow
from serve_app.errors import Conflict, IdempotencyKeyReused, InvalidRequest
from serve_app.storage.db import Database
from serve_app.storage.orm import utcnow

_KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,200}$")
_IN_FLIGHT = "in_flight"
_COMPLETED = "completed"


@dataclass(frozen=True)
class StoredResponse:
    """A response recorded for replay."""

    status_code: int
    body: Any


def validate_key(key: str) -> str:
    """The key if it is 1-200 visible ASCII characters.

    Raises:
        InvalidRequest: otherwise.
    """
    if not _KEY_PATTERN.match(key):
        raise InvalidRequest("Idempotency-Key must be 1-200 visible ASCII characters")
    return key


def fingerprint(*parts: str | bytes | None) -> str:
    """A SHA-256 over ``parts`` (length-prefixed, so boundaries cannot shift)."""
    digest = hashlib.sha256()
    for part in parts:
        data = b"\xff" if part is None else part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes (blocking; for fingerprints of uploads)."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def begin_in(
    session: Session, user_id: int, key: str, request_fingerprint: str, stale_after: dt.timedelta
) -> int | StoredResponse:
    """Claim ``key`` for a new request (its record id) or return the stored response.

    Raises:
        IdempotencyKeyReused: the key was used for a different request.
        Conflict: the first request with this key is still running.
    """
    row = session.scalar(
        select(IdempotencyKeyRow).where(
            IdempotencyKeyRow.user_id == user_id, IdempotencyKeyRow.key == key
        )
    )
    now = utcnow()
    if row is None:
        row = IdempotencyKeyRow(
            user_id=user_id,
            key=key,
            fingerprint=request_fingerprint,
            state=_IN_FLIGHT,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return row.id
    if row.fingerprint != request_fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used for a different request; use a new key"
        )
    if row.state == _COMPLETED:
        body = json.loads(row.response_json) if row.response_json is not None else None
        return StoredResponse(status_code=row.status_code or 200, body=body)
    if row.updated_at < now - stale_after:
        taken = session.connection().execute(
            update(IdempotencyKeyRow)
            .where(IdempotencyKeyRow.id == row.id, IdempotencyKeyRow.updated_at == row.updated_at)
            .values(updated_at=now)
        )
        if taken.rowcount == 1:
            return row.id
    raise Conflict(
        "a request with this Idempotency-Key is still in progress; retry when it has finished"
    )


def complete_in(session: Session, record_id: int, response: StoredResponse) -> None:
    """Store the response of the request that claimed ``record_id``."""
    session.connection().execute(
        update(IdempotencyKeyRow)
        .where(IdempotencyKeyRow.id == record_id)
        .values(
            state=_COMPLETED,
            status_code=response.status_code,
            response_json=json.dumps(response.body, separators=(",", ":")),
            updated_at=utcnow(),
        )
    )


def abandon_in(session: Session, record_id: int) -> None:
    """Forget an in-flight claim (the request failed; a retry may run again)."""
    session.connection().execute(
        delete(IdempotencyKeyRow).where(
            IdempotencyKeyRow.id == record_id, IdempotencyKeyRow.state == _IN_FLIGHT
        )
    )


class IdempotencyStore:
    """Idempotency records, each operation in its own transaction."""

    def __init__(self, database: Database, stale_after: dt.timedelta) -> None:
        self._db = database
        self._stale_after = stale_after

    def begin(self, user_id: int, key: str, request_fingerprint: str) -> int | StoredResponse:
        """See :func:`begin_in`; a concurrent first insert of the same key gets 409."""
        try:
            with self._db.transaction() as session:
                return begin_in(session, user_id, key, request_fingerprint, self._stale_after)
        except IntegrityError:
            # Another request inserted the same key a moment ago: decide against it.
            with self._db.transaction() as session:
                return begin_in(session, user_id, key, request_fingerprint, self._stale_after)

    def complete(self, record_id: int, response: StoredResponse) -> None:
        with self._db.transaction() as session:
            complete_in(session, record_id, response)

    def abandon(self, record_id: int) -> None:
        with self._db.transaction() as session:
            abandon_in(session, record_id)

    def renew(self, record_ids: Collection[int]) -> None:
        """Mark these in-flight records as still owned (see ``stale_after``)."""
        if not record_ids:
            return
        with self._db.transaction() as session:
            session.connection().execute(
                update(IdempotencyKeyRow)
                .where(
                    IdempotencyKeyRow.id.in_(list(record_ids)),
                    IdempotencyKeyRow.state == _IN_FLIGHT,
                )
                .values(updated_at=utcnow())
            )

    def purge(self, older_than: dt.timedelta) -> int:
        """Delete completed records older than ``older_than``; returns how many."""
        cutoff = utcnow() - older_than
        with self._db.transaction() as session:
            result = session.connection().execute(
                delete(IdempotencyKeyRow).where(
                    IdempotencyKeyRow.state == _COMPLETED, IdempotencyKeyRow.updated_at < cutoff
                )
            )
            return int(result.rowcount or 0)

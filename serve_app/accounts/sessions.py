"""Login sessions: a random secret in a signed cookie, a database row per session.

The cookie carries ``<secret>.<HMAC>``; the row is keyed by the secret's SHA-256, so
a database leak reveals no usable cookie, and logging out (or a password reset) ends
the session on every replica. The CSRF token is an HMAC of the session secret: bound
to the session, it cannot be forged without the signing key.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import logging
import os
import secrets
import time
from pathlib import Path

from sqlalchemy import delete, or_, select, update

from serve_app.accounts.models import LoginSessionRow, UserRow
from serve_app.accounts.users import User
from serve_app.storage.db import Database
from serve_app.storage.orm import utcnow

logger = logging.getLogger(__name__)

SECRET_FILE = "session_secret"  # noqa: S105  (a file name)
_MAX_COOKIE_CHARS = 256


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class SessionSigner:
    """Signs session cookies and derives CSRF tokens from one secret key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the session signing key needs at least 32 bytes")
        self._key = key

    def _mac(self, purpose: bytes, value: str) -> str:
        return _b64(hmac.new(self._key, purpose + b"\x00" + value.encode(), "sha256").digest())

    def sign(self, session_secret: str) -> str:
        return f"{session_secret}.{self._mac(b'session', session_secret)}"

    def unsign(self, cookie: str) -> str | None:
        """The session secret if the cookie's signature is valid, else None."""
        if len(cookie) > _MAX_COOKIE_CHARS or "." not in cookie:
            return None
        value, _, signature = cookie.rpartition(".")
        expected = self._mac(b"session", value)
        return value if hmac.compare_digest(signature.encode(), expected.encode()) else None

    def csrf_token(self, session_secret: str) -> str:
        return self._mac(b"csrf", session_secret)

    def check_csrf(self, session_secret: str, presented: str | None) -> bool:
        if not presented or len(presented) > _MAX_COOKIE_CHARS:
            return False
        return hmac.compare_digest(presented.encode(), self.csrf_token(session_secret).encode())


def load_or_create_secret(data_dir: Path) -> bytes:
    """The per-data-directory signing key, created once (random, mode 0600).

    Safe when several processes start together: the file appears atomically (written
    to a temporary name, then hard-linked into place), and losers read the winner's.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_FILE
    if not path.exists():
        tmp = data_dir / f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)
            logger.info("generated a session signing key in %s", path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    if path.stat().st_mode & 0o077:
        logger.warning("%s is readable by other users; chmod 600 it", path)
    for _ in range(50):
        text = path.read_text().strip()
        if text:
            return bytes.fromhex(text)
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty")


def session_id(session_secret: str) -> str:
    return hashlib.sha256(session_secret.encode()).hexdigest()


class LoginSessions:
    """Session rows: create, resolve to a user, revoke."""

    def __init__(self, database: Database, ttl: dt.timedelta) -> None:
        self._db = database
        self.ttl = ttl

    def create(self, user_id: int) -> str:
        """A new session for ``user_id``; returns its secret (goes into the cookie)."""
        secret = secrets.token_urlsafe(32)
        now = utcnow()
        with self._db.transaction() as session:
            session.add(
                LoginSessionRow(
                    id=session_id(secret),
                    user_id=user_id,
                    created_at=now,
                    expires_at=now + self.ttl,
                )
            )
        return secret

    def authenticate(self, session_secret: str) -> User | None:
        """The user of a live (not expired, not revoked) session."""
        with self._db.transaction() as session:
            row = session.scalar(
                select(UserRow)
                .join(LoginSessionRow, LoginSessionRow.user_id == UserRow.id)
                .where(
                    LoginSessionRow.id == session_id(session_secret),
                    LoginSessionRow.revoked_at.is_(None),
                    LoginSessionRow.expires_at > utcnow(),
                )
            )
            return User.from_row(row) if row else None

    def revoke(self, session_secret: str) -> bool:
        with self._db.transaction() as session:
            result = session.connection().execute(
                update(LoginSessionRow)
                .where(
                    LoginSessionRow.id == session_id(session_secret),
                    LoginSessionRow.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            return result.rowcount == 1

    def purge(self, revoked_before: dt.timedelta = dt.timedelta(days=1)) -> int:
        """Delete expired sessions and ones revoked long ago; returns how many."""
        now = utcnow()
        with self._db.transaction() as session:
            result = session.connection().execute(
                delete(LoginSessionRow).where(
                    or_(
                        LoginSessionRow.expires_at < now,
                        LoginSessionRow.revoked_at < now - revoked_before,
                    )
                )
            )
            return int(result.rowcount or 0)

"""API tokens: random secrets shown once, stored as SHA-256 digests, listed by prefix."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import func, select, update

from serve_app.accounts.models import ApiTokenRow, UserRow
from serve_app.accounts.users import User
from serve_app.errors import Conflict, InvalidRequest, NotFound
from serve_app.storage.db import Database
from serve_app.storage.orm import utcnow

#: 32 random bytes: 256 bits, 43 URL-safe base64 characters.
SECRET_BYTES = 32
_SECRET_BODY = r"[A-Za-z0-9_-]{43}"  # noqa: S105  (a pattern)
#: Characters of the secret (after the prefix) kept for listings.
SHOWN_CHARS = 6
MAX_TOKENS_PER_USER = 100
#: Token ids are positive 32-bit integers (the column's range on every backend).
MAX_TOKEN_ID = 2**31 - 1
_TOKEN_ID = re.compile(r"[1-9][0-9]{0,9}")
UNKNOWN_ID = "no such API token"


@dataclass(frozen=True)
class ApiTokenInfo:
    id: int
    name: str
    prefix: str
    created_at: dt.datetime
    last_used: dt.datetime | None

    @classmethod
    def from_row(cls, row: ApiTokenRow) -> ApiTokenInfo:
        return cls(row.id, row.name, row.prefix, row.created_at, row.last_used)


@dataclass(frozen=True)
class CreatedToken:
    """A new token; ``token`` is the secret, available only now."""

    info: ApiTokenInfo
    token: str


@dataclass(frozen=True)
class TokenIdentity:
    user: User
    token_id: int


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_token_id(text: str) -> int | None:
    """The token id written in ``text`` (plain ASCII digits), or None if it names none."""
    if _TOKEN_ID.fullmatch(text) is None:
        return None
    token_id = int(text)
    return token_id if token_id <= MAX_TOKEN_ID else None


class ApiTokens:
    """Create, list, revoke and check API tokens."""

    def __init__(self, database: Database, prefix: str = "sa_") -> None:
        self._db = database
        self.prefix = prefix
        self._pattern = re.compile(re.escape(prefix) + _SECRET_BODY)

    def new_secret(self) -> str:
        return self.prefix + secrets.token_urlsafe(SECRET_BYTES)

    def is_well_formed(self, secret: str) -> bool:
        return self._pattern.fullmatch(secret) is not None

    def create(self, user_id: int, name: str) -> CreatedToken:
        """Make a token for ``user_id``.

        Raises:
            InvalidRequest: empty or overlong name.
            Conflict: the user already has the maximum number of tokens.
        """
        name = name.strip()
        if not 1 <= len(name) <= 100:
            raise InvalidRequest("token names are 1-100 characters")
        secret = self.new_secret()
        row = ApiTokenRow(
            user_id=user_id,
            name=name,
            prefix=secret[: len(self.prefix) + SHOWN_CHARS],
            digest=token_digest(secret),
            created_at=utcnow(),
        )
        with self._db.transaction() as session:
            active = session.scalar(
                select(func.count())
                .select_from(ApiTokenRow)
                .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
            )
            if (active or 0) >= MAX_TOKENS_PER_USER:
                raise Conflict(f"at most {MAX_TOKENS_PER_USER} API tokens per user; revoke one")
            session.add(row)
        return CreatedToken(ApiTokenInfo.from_row(row), secret)

    def list_active(self, user_id: int) -> list[ApiTokenInfo]:
        """The user's active tokens, oldest first."""
        with self._db.transaction() as session:
            rows = session.scalars(
                select(ApiTokenRow)
                .where(ApiTokenRow.user_id == user_id, ApiTokenRow.revoked_at.is_(None))
                .order_by(ApiTokenRow.created_at, ApiTokenRow.id)
            )
            return [ApiTokenInfo.from_row(r) for r in rows]

    def revoke(self, user_id: int, token_id: int) -> None:
        """Revoke one of the user's own tokens.

        Raises:
            NotFound: no active token with that id belongs to ``user_id``.
        """
        if not 1 <= token_id <= MAX_TOKEN_ID:
            raise NotFound(UNKNOWN_ID)
        with self._db.transaction() as session:
            result = session.connection().execute(
                update(ApiTokenRow)
                .where(
                    ApiTokenRow.id == token_id,
                    ApiTokenRow.user_id == user_id,
                    ApiTokenRow.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            if result.rowcount != 1:
                raise NotFound(UNKNOWN_ID)

    def authenticate(self, secret: str) -> TokenIdentity | None:
        """The token's user when ``secret`` is an active token; records ``last_used``."""
        if not self.is_well_formed(secret):
            return None
        digest = token_digest(secret)
        with self._db.transaction() as session:
            found = session.execute(
                select(ApiTokenRow, UserRow)
                .join(UserRow, UserRow.id == ApiTokenRow.user_id)
                .where(ApiTokenRow.digest == digest, ApiTokenRow.revoked_at.is_(None))
            ).one_or_none()
            if found is None:
                return None
            token, user = found
            if not hmac.compare_digest(token.digest, digest):
                return None
            session.connection().execute(
                update(ApiTokenRow).where(ApiTokenRow.id == token.id).values(last_used=utcnow())
            )
            return TokenIdentity(User.from_row(user), token.id)

"""Users: creation, password login and resets, lookups."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from serve_app.accounts.credits import grant_in
from serve_app.accounts.models import LoginSessionRow, UserRow
from serve_app.accounts.passwords import Passwords
from serve_app.errors import Conflict, InvalidRequest, NotFound
from serve_app.storage.db import Database
from serve_app.storage.orm import utcnow

USERNAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

FIRST_ADMIN_HINT = (
    "no admin account exists yet; create one with:\n"
    "  serve-app create-user NAME --admin            (prompts for the password)\n"
    '  echo "$PASSWORD" | serve-app create-user NAME --admin --password-stdin'
)


@dataclass(frozen=True)
class User:
    """A user as routes see it (a value object; never the ORM row)."""

    id: int
    username: str
    is_admin: bool
    balance: int
    created_at: dt.datetime

    @classmethod
    def from_row(cls, row: UserRow) -> User:
        return cls(row.id, row.username, row.is_admin, row.balance, row.created_at)


def normalize_username(username: str) -> str:
    """Lower-cased, stripped; 1-64 of ``a-z 0-9 . _ -``, starting alphanumeric.

    Raises:
        InvalidRequest: the name does not fit that pattern.
    """
    name = username.strip().lower()
    if not USERNAME_PATTERN.match(name):
        raise InvalidRequest(
            "usernames are 1-64 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def create_user(
    database: Database,
    passwords: Passwords,
    username: str,
    password: str,
    *,
    is_admin: bool = False,
    credits: int = 0,
) -> User:
    """Create a user, with an opening credit grant when ``credits`` > 0.

    Raises:
        InvalidRequest: bad username or password, or negative credits.
        Conflict: the username is taken.
    """
    name = normalize_username(username)
    if credits < 0:
        raise InvalidRequest("initial credits cannot be negative")
    password_hash = passwords.hash(password)
    try:
        with database.transaction() as session:
            row = UserRow(username=name, password_hash=password_hash, is_admin=is_admin, balance=0)
            session.add(row)
            session.flush()
            if credits:
                grant_in(session, row.id, credits, "initial credits")
            session.refresh(row)
            return User.from_row(row)
    except IntegrityError as exc:
        raise Conflict(f"user {name!r} already exists") from exc


def authenticate_password(
    database: Database, passwords: Passwords, username: str, password: str
) -> User | None:
    """The user when the password matches; None otherwise (similar time either way)."""
    try:
        name = normalize_username(username)
    except InvalidRequest:
        passwords.verify(None, password)
        return None
    with database.transaction() as session:
        row = session.scalar(select(UserRow).where(UserRow.username == name))
    if not passwords.verify(row.password_hash if row else None, password) or row is None:
        return None
    if passwords.needs_rehash(row.password_hash):
        new_hash = passwords.hash(password)
        with database.transaction() as session:
            session.execute(
                update(UserRow).where(UserRow.id == row.id).values(password_hash=new_hash)
            )
    return User.from_row(row)


def reset_password(database: Database, passwords: Passwords, username: str, password: str) -> int:
    """Set a new password and end the user's login sessions; returns sessions ended.

    Raises:
        NotFound: no such user.
    """
    name = normalize_username(username)
    password_hash = passwords.hash(password)
    with database.transaction() as session:
        user_id = session.scalar(select(UserRow.id).where(UserRow.username == name))
        if user_id is None:
            raise NotFound(f"no user named {name!r}")
        session.execute(
            update(UserRow).where(UserRow.id == user_id).values(password_hash=password_hash)
        )
        ended = session.execute(
            update(LoginSessionRow)
            .where(LoginSessionRow.user_id == user_id, LoginSessionRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        return int(getattr(ended, "rowcount", 0) or 0)


def grant_credits(database: Database, username: str, amount: int, reason: str) -> User:
    """Add (negative: take away) credits by username; returns the updated user.

    Raises:
        NotFound: no such user.
        InsufficientCredits: a negative amount exceeds the balance.
    """
    user = find_user(database, username)
    with database.transaction() as session:
        grant_in(session, user.id, amount, reason)
        row = session.get(UserRow, user.id)
        assert row is not None
        session.refresh(row)
        return User.from_row(row)


def get_user(database: Database, user_id: int) -> User | None:
    with database.transaction() as session:
        row = session.get(UserRow, user_id)
        return User.from_row(row) if row else None


def find_user(database: Database, username: str) -> User:
    """The user named ``username``.

    Raises:
        NotFound: no such user (or an impossible name).
    """
    try:
        name = normalize_username(username)
    except InvalidRequest as exc:
        raise NotFound(f"no user named {username.strip()!r}") from exc
    with database.transaction() as session:
        row = session.scalar(select(UserRow).where(UserRow.username == name))
        if row is None:
            raise NotFound(f"no user named {name!r}")
        return User.from_row(row)


def list_users(database: Database) -> list[User]:
    with database.transaction() as session:
        return [User.from_row(r) for r in session.scalars(select(UserRow).order_by(UserRow.id))]


def count_admins(database: Database) -> int:
    with database.transaction() as session:
        count = session.scalar(select(func.count()).select_from(UserRow).where(UserRow.is_admin))
        return int(count or 0)

"""Password hashing with argon2id (memory-hard), cost parameters from settings."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from serve_app.accounts.settings import AccountSettings
from serve_app.errors import InvalidRequest

MIN_PASSWORD_CHARS = 8
#: Hashing cost must not be steerable by the client.
MAX_PASSWORD_CHARS = 1024


class Passwords:
    """Hashes and verifies passwords; ``verify`` takes about as long for unknown users."""

    def __init__(self, settings: AccountSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.argon2_time_cost,
            memory_cost=settings.argon2_memory_kib,
            parallelism=settings.argon2_parallelism,
        )
        self._dummy_hash = self._hasher.hash("not a real password, only burns time")

    def hash(self, password: str) -> str:
        """Hash a new password after checking its length.

        Raises:
            InvalidRequest: shorter than 8 or longer than 1024 characters.
        """
        if len(password) < MIN_PASSWORD_CHARS:
            raise InvalidRequest(f"passwords need at least {MIN_PASSWORD_CHARS} characters")
        if len(password) > MAX_PASSWORD_CHARS:
            raise InvalidRequest(f"passwords are limited to {MAX_PASSWORD_CHARS} characters")
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether ``password`` matches; ``password_hash=None`` (no such user) is False."""
        if len(password) > MAX_PASSWORD_CHARS:
            return False
        try:
            return self._hasher.verify(password_hash or self._dummy_hash, password) and (
                password_hash is not None
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

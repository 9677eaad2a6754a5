"""Signed URLs: HMAC-SHA256 over (method, object key, expiry, user id).

A signed URL carries ``?expires=<unix s>&uid=<user id>&sig=<signature>``. It works for
that one object, that method and that user until it expires; any change to the key,
method, expiry or user gives another signature. Signatures are compared in constant
time. A failed check raises :class:`~serve_app.errors.PermissionDenied` (HTTP 403),
whether the URL was tampered with or has expired.

The key comes from ``jobs.url_secret`` or, unset, is derived from the per-data-directory
secret that also signs session cookies (``serve_app.accounts.sessions``), under its own
label so the two uses never share a MAC key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit

from serve_app.errors import PermissionDenied

_VERSION = b"serve_app signed url v1"
_MAX_PARAM_CHARS = 64


def derive_key(secret: bytes, label: str) -> bytes:
    """A key for one purpose (``label``) derived from a longer-lived ``secret``."""
    return hmac.new(secret, b"serve_app key derivation\x00" + label.encode(), "sha256").digest()


@dataclass(frozen=True)
class SignedParams:
    """The query parameters of a signed URL."""

    expires: int
    uid: int
    sig: str

    def query(self) -> str:
        return urlencode({"expires": self.expires, "uid": self.uid, "sig": self.sig})


class UrlSigner:
    """Signs and verifies object URLs with one key (at least 32 bytes)."""

    def __init__(self, key: bytes, clock: Callable[[], float] = time.time) -> None:
        if len(key) < 32:
            raise ValueError("the URL signing key needs at least 32 bytes")
        self._key = key
        self._clock = clock

    def _mac(self, method: str, key: str, expires: int, uid: int) -> str:
        message = b"\n".join(
            (
                _VERSION,
                method.upper().encode(),
                key.encode(),
                str(expires).encode(),
                str(uid).encode(),
            )
        )
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()

    def sign(self, method: str, key: str, uid: int, ttl_s: float) -> SignedParams:
        """Parameters that let ``uid`` use ``method`` on ``key`` for ``ttl_s`` seconds."""
        expires = int(self._clock() + ttl_s)
        return SignedParams(expires, uid, self._mac(method, key, expires, uid))

    def verify(self, method: str, key: str, params: Mapping[str, str]) -> int:
        """The user id a valid signature was made for.

        Raises:
            PermissionDenied: missing, malformed, tampered or expired signature.
        """
        raw = {name: params.get(name, "") for name in ("expires", "uid", "sig")}
        if any(not value or len(value) > _MAX_PARAM_CHARS for value in raw.values()):
            raise PermissionDenied("this URL is not signed (expires, uid and sig are required)")
        if not (raw["expires"].isdigit() and raw["uid"].isdigit()):
            raise PermissionDenied("invalid URL signature")
        expires, uid = int(raw["expires"]), int(raw["uid"])
        expected = self._mac(method, key, expires, uid)
        if not hmac.compare_digest(expected.encode(), raw["sig"].encode()):
            raise PermissionDenied("invalid URL signature")
        if self._clock() > expires:
            raise PermissionDenied("this signed URL has expired; request a new one")
        return uid


def query_params(url: str) -> dict[str, str]:
    """The (last value of each) query parameter of ``url``."""
    return dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))

"""Signed URLs: bound to method, key, expiry and user; tampering or expiry is a 403."""

from __future__ import annotations

import pytest

from serve_app.errors import PermissionDenied
from serve_app.storage.signed_urls import UrlSigner, derive_key, query_params

KEY = b"s" * 32


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def params_of(signer: UrlSigner, method: str = "PUT", key: str = "uploads/a.mp4") -> dict:
    signed = signer.sign(method, key, 7, ttl_s=60)
    return query_params("http://h/x?" + signed.query())


def test_a_signed_url_verifies_to_its_user() -> None:
    signer = UrlSigner(KEY, clock=Clock())
    assert signer.verify("PUT", "uploads/a.mp4", params_of(signer)) == 7


@pytest.mark.parametrize(
    "change",
    [
        {"sig": "A" * 43},
        {"uid": "8"},
        {"expires": "1000061"},
        {"expires": "99999999999"},
        {"sig": ""},
        {"uid": "-1"},
        {"expires": "1e9"},
    ],
)
def test_tampered_parameters_are_refused(change: dict) -> None:
    signer = UrlSigner(KEY, clock=Clock())
    params = params_of(signer) | change
    with pytest.raises(PermissionDenied):
        signer.verify("PUT", "uploads/a.mp4", params)


def test_the_signature_covers_the_key_and_the_method() -> None:
    signer = UrlSigner(KEY, clock=Clock())
    params = params_of(signer)
    with pytest.raises(PermissionDenied):
        signer.verify("PUT", "uploads/b.mp4", params)
    with pytest.raises(PermissionDenied):
        signer.verify("GET", "uploads/a.mp4", params)


def test_expired_urls_are_refused() -> None:
    clock = Clock()
    signer = UrlSigner(KEY, clock=clock)
    params = params_of(signer)
    clock.now += 61
    with pytest.raises(PermissionDenied, match="expired"):
        signer.verify("PUT", "uploads/a.mp4", params)


def test_missing_parameters_and_other_keys_are_refused() -> None:
    signer = UrlSigner(KEY, clock=Clock())
    with pytest.raises(PermissionDenied, match="not signed"):
        signer.verify("PUT", "uploads/a.mp4", {})
    other = UrlSigner(b"t" * 32, clock=Clock())
    with pytest.raises(PermissionDenied):
        other.verify("PUT", "uploads/a.mp4", params_of(signer))


def test_keys_are_long_and_derived_per_purpose() -> None:
    with pytest.raises(ValueError):
        UrlSigner(b"short")
    assert derive_key(KEY, "signed urls") != derive_key(KEY, "other")
    assert len(derive_key(KEY, "signed urls")) == 32

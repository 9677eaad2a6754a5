import datetime as dt

import pytest

from serve_app.accounts.idempotency import (
    IdempotencyStore,
    StoredResponse,
    fingerprint,
    validate_key,
)
from serve_app.accounts.users import create_user
from serve_app.errors import Conflict, IdempotencyKeyReused, InvalidRequest
from serve_app.storage.orm import utcnow


@pytest.fixture
def store_and_user(accounts):
    user = create_user(accounts.database, accounts.passwords, "alice", "password123")
    return IdempotencyStore(accounts.database, dt.timedelta(minutes=5)), user


def test_first_claims_then_replays(store_and_user):
    store, user = store_and_user
    record = store.begin(user.id, "k", "fp")
    assert isinstance(record, int)
    with pytest.raises(Conflict):
        store.begin(user.id, "k", "fp")
    with pytest.raises(IdempotencyKeyReused):
        store.begin(user.id, "k", "other")
    store.complete(record, StoredResponse(201, {"a": [1, "é"]}))
    assert store.begin(user.id, "k", "fp") == StoredResponse(201, {"a": [1, "é"]})


def test_keys_are_per_user(accounts, store_and_user):
    store, alice = store_and_user
    bob = create_user(accounts.database, accounts.passwords, "bob", "password123")
    assert isinstance(store.begin(alice.id, "k", "fp"), int)
    assert isinstance(store.begin(bob.id, "k", "fp"), int)


def test_abandoned_keys_can_be_reused(store_and_user):
    store, user = store_and_user
    store.abandon(store.begin(user.id, "k", "fp"))
    assert isinstance(store.begin(user.id, "k", "fp"), int)


def test_stale_in_flight_keys_are_taken_over_and_old_ones_purged(store_and_user, monkeypatch):
    store, user = store_and_user
    first = store.begin(user.id, "k", "fp")
    later = utcnow() + dt.timedelta(minutes=10)
    monkeypatch.setattr("serve_app.accounts.idempotency.utcnow", lambda: later)
    assert store.begin(user.id, "k", "fp") == first
    store.complete(first, StoredResponse(200, None))
    monkeypatch.setattr(
        "serve_app.accounts.idempotency.utcnow", lambda: later + dt.timedelta(days=2)
    )
    assert store.purge(dt.timedelta(days=1)) == 1


def test_key_validation_and_fingerprints():
    assert validate_key("abc-123_:.") == "abc-123_:."
    for bad in ["", "a b", "x" * 201, "é"]:
        with pytest.raises(InvalidRequest):
            validate_key(bad)
    assert fingerprint("ab", "c") != fingerprint("a", "bc")
    assert fingerprint(None) != fingerprint("")
    assert fingerprint("x", b"y") == fingerprint(b"x", "y")


def test_file_sha256(tmp_path):
    import hashlib

    from serve_app.accounts.idempotency import file_sha256

    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    assert file_sha256(path) == hashlib.sha256(b"abc" * 1000).hexdigest()

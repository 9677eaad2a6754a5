import datetime as dt
import stat
from concurrent.futures import ThreadPoolExecutor

from serve_app.accounts.sessions import SessionSigner, load_or_create_secret
from serve_app.accounts.users import create_user, reset_password
from serve_app.storage.orm import utcnow


def test_signer_round_trip_and_tamper_detection():
    signer = SessionSigner(b"x" * 32)
    cookie = signer.sign("abc")
    assert signer.unsign(cookie) == "abc"
    assert signer.unsign(cookie[:-1] + ("A" if cookie[-1] != "A" else "B")) is None
    assert signer.unsign("abc") is None
    assert signer.unsign("def." + cookie.split(".")[1]) is None
    assert SessionSigner(b"y" * 32).unsign(cookie) is None
    assert signer.unsign("a" * 1000 + "." + "b") is None


def test_csrf_token_is_bound_to_the_session():
    signer = SessionSigner(b"x" * 32)
    token = signer.csrf_token("s1")
    assert signer.check_csrf("s1", token)
    assert not signer.check_csrf("s2", token)
    assert not signer.check_csrf("s1", None)
    assert not signer.check_csrf("s1", "")


def test_short_keys_are_refused():
    import pytest

    with pytest.raises(ValueError):
        SessionSigner(b"short")


def test_secret_file_is_created_once_with_mode_0600(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda _: load_or_create_secret(tmp_path), range(8)))
    assert len(set(keys)) == 1 and len(keys[0]) == 32
    mode = stat.S_IMODE((tmp_path / "session_secret").stat().st_mode)
    assert mode == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["session_secret"]
    assert load_or_create_secret(tmp_path) == keys[0]
    assert load_or_create_secret(tmp_path / "other") != keys[0]


def test_sessions_resolve_until_revoked(accounts):
    user = create_user(accounts.database, accounts.passwords, "alice", "password123")
    secret = accounts.sessions.create(user.id)
    assert accounts.sessions.authenticate(secret).username == "alice"
    assert accounts.sessions.authenticate(secret + "x") is None
    assert accounts.sessions.revoke(secret) is True
    assert accounts.sessions.revoke(secret) is False
    assert accounts.sessions.authenticate(secret) is None


def test_sessions_expire(accounts, monkeypatch):
    user = create_user(accounts.database, accounts.passwords, "alice", "password123")
    secret = accounts.sessions.create(user.id)
    later = utcnow() + accounts.sessions.ttl + dt.timedelta(seconds=1)
    monkeypatch.setattr("serve_app.accounts.sessions.utcnow", lambda: later)
    assert accounts.sessions.authenticate(secret) is None
    assert accounts.sessions.purge() == 1


def test_password_reset_ends_sessions(accounts):
    user = create_user(accounts.database, accounts.passwords, "alice", "password123")
    secret = accounts.sessions.create(user.id)
    assert reset_password(accounts.database, accounts.passwords, "alice", "new-password") == 1
    assert accounts.sessions.authenticate(secret) is None

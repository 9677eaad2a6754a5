import pytest

from serve_app.accounts.passwords import Passwords
from serve_app.accounts.settings import AccountSettings
from serve_app.errors import InvalidRequest
from tests.support.databases import FAST_SETTINGS


def test_hash_is_argon2id_and_verifies():
    passwords = Passwords(FAST_SETTINGS)
    hashed = passwords.hash("correct horse")
    assert hashed.startswith("$argon2id$")
    assert "correct horse" not in hashed
    assert passwords.verify(hashed, "correct horse")
    assert not passwords.verify(hashed, "wrong horse")
    assert not passwords.verify("not a hash", "correct horse")
    assert not passwords.verify(None, "correct horse")


def test_length_limits():
    passwords = Passwords(FAST_SETTINGS)
    with pytest.raises(InvalidRequest):
        passwords.hash("short")
    with pytest.raises(InvalidRequest):
        passwords.hash("x" * 1025)
    assert not passwords.verify(passwords.hash("x" * 1024), "x" * 1025)


def test_changed_parameters_ask_for_a_rehash():
    cheap = Passwords(FAST_SETTINGS)
    hashed = cheap.hash("correct horse")
    assert not cheap.needs_rehash(hashed)
    stronger = Passwords(FAST_SETTINGS.model_copy(update={"argon2_time_cost": 2}))
    assert stronger.needs_rehash(hashed)
    assert stronger.verify(hashed, "correct horse")


def test_defaults_are_memory_hard():
    settings = AccountSettings()
    assert settings.argon2_memory_kib >= 64 * 1024 and settings.argon2_time_cost >= 2

import pytest

from serve_app.accounts.login import log_in, log_out
from serve_app.accounts.users import create_user
from serve_app.errors import AuthenticationFailed, PermissionDenied, RateLimited


def test_log_in_and_out(accounts):
    create_user(accounts.database, accounts.passwords, "alice", "password123")
    result = log_in(accounts, "alice", "password123", "1.2.3.4")
    secret = accounts.signer.unsign(result.session_cookie)
    assert accounts.sessions.authenticate(secret).username == "alice"
    assert accounts.signer.check_csrf(secret, result.csrf_token)
    with pytest.raises(PermissionDenied):
        log_out(accounts, result.session_cookie, None)
    assert log_out(accounts, result.session_cookie, result.csrf_token) is True
    assert accounts.sessions.authenticate(secret) is None
    assert log_out(accounts, None, None) is False
    assert log_out(accounts, "forged.cookie", None) is False


def test_wrong_passwords_are_rate_limited(accounts):
    create_user(accounts.database, accounts.passwords, "alice", "password123")
    for _ in range(accounts.settings.login_burst):
        with pytest.raises(AuthenticationFailed):
            log_in(accounts, "alice", "wrong-password", "1.2.3.4")
    with pytest.raises(RateLimited):
        log_in(accounts, "alice", "password123", "1.2.3.4")

import pytest

from serve_app.accounts.users import (
    authenticate_password,
    count_admins,
    create_user,
    find_user,
    get_user,
    list_users,
    normalize_username,
    reset_password,
)
from serve_app.errors import Conflict, InvalidRequest, NotFound


def test_create_and_log_in(accounts):
    user = create_user(accounts.database, accounts.passwords, "Alice", "password123", credits=50)
    assert (user.username, user.is_admin, user.balance) == ("alice", False, 50)
    assert user.created_at.tzinfo is not None
    assert accounts.credits.ledger_sum(user.id) == 50
    db, pw = accounts.database, accounts.passwords
    assert authenticate_password(db, pw, "ALICE", "password123") == user
    assert authenticate_password(db, pw, "alice", "wrong-password") is None
    assert authenticate_password(db, pw, "nobody", "password123") is None
    assert authenticate_password(db, pw, "bad name!", "password123") is None


def test_duplicate_names_conflict(accounts):
    create_user(accounts.database, accounts.passwords, "alice", "password123")
    with pytest.raises(Conflict):
        create_user(accounts.database, accounts.passwords, "ALICE", "password456")


@pytest.mark.parametrize("name", ["", "a b", "-x", "x" * 65, "é"])
def test_bad_usernames(name):
    with pytest.raises(InvalidRequest):
        normalize_username(name)


def test_bad_passwords_and_credits(accounts):
    with pytest.raises(InvalidRequest):
        create_user(accounts.database, accounts.passwords, "alice", "short")
    with pytest.raises(InvalidRequest):
        create_user(accounts.database, accounts.passwords, "alice", "password123", credits=-1)


def test_admins_lookups_and_reset(accounts):
    db, pw = accounts.database, accounts.passwords
    assert count_admins(db) == 0
    admin = create_user(db, pw, "root", "password123", is_admin=True)
    create_user(db, pw, "bob", "password123")
    assert count_admins(db) == 1
    assert [u.username for u in list_users(db)] == ["root", "bob"]
    assert get_user(db, admin.id) == admin
    assert get_user(db, 999) is None
    assert find_user(db, "ROOT") == admin
    with pytest.raises(NotFound):
        find_user(db, "nobody")
    with pytest.raises(NotFound):
        reset_password(db, pw, "nobody", "password123")
    reset_password(db, pw, "bob", "another-password")
    assert authenticate_password(db, pw, "bob", "password123") is None
    assert authenticate_password(db, pw, "bob", "another-password") is not None


def test_grant_credits_by_username(accounts):
    from serve_app.accounts.users import grant_credits
    from serve_app.errors import InsufficientCredits

    user = create_user(accounts.database, accounts.passwords, "alice", "password123")
    assert grant_credits(accounts.database, "Alice", 40, "promo").balance == 40
    with pytest.raises(InsufficientCredits):
        grant_credits(accounts.database, "alice", -41, "too much")
    with pytest.raises(NotFound):
        grant_credits(accounts.database, "nobody", 1, "x")
    assert accounts.credits.ledger_sum(user.id) == 40

import hashlib

import pytest
from sqlalchemy import select

from serve_app.accounts.models import ApiTokenRow
from serve_app.accounts.tokens import ApiTokens, parse_token_id
from serve_app.accounts.users import create_user
from serve_app.errors import InvalidRequest, NotFound


@pytest.fixture
def users(accounts):
    make = lambda name: create_user(accounts.database, accounts.passwords, name, "password123")  # noqa: E731
    return make("alice"), make("bob")


def stored_rows(database):
    with database.transaction() as session:
        return list(session.scalars(select(ApiTokenRow)))


def test_secret_is_random_prefixed_and_stored_only_as_a_digest(accounts, users):
    alice, _ = users
    created = accounts.tokens.create(alice.id, "laptop")
    assert created.token.startswith("sa_") and len(created.token) == 3 + 43
    assert created.info.prefix == created.token[:9]
    (row,) = stored_rows(accounts.database)
    assert row.digest == hashlib.sha256(created.token.encode()).hexdigest()
    assert created.token not in {row.id, row.name, row.prefix, row.digest}
    assert accounts.tokens.create(alice.id, "x").token != created.token


def test_authenticate_sets_last_used_on_success_only(accounts, users):
    alice, _ = users
    created = accounts.tokens.create(alice.id, "laptop")
    assert accounts.tokens.list_active(alice.id)[0].last_used is None
    wrong = created.token[:-1] + ("A" if created.token[-1] != "A" else "B")
    assert accounts.tokens.authenticate(wrong) is None
    assert accounts.tokens.authenticate("garbage") is None
    assert accounts.tokens.list_active(alice.id)[0].last_used is None
    identity = accounts.tokens.authenticate(created.token)
    assert identity is not None and identity.user.username == "alice"
    assert identity.token_id == created.info.id
    assert accounts.tokens.list_active(alice.id)[0].last_used is not None


def test_revoked_tokens_fail_and_disappear_from_the_list(accounts, users):
    alice, _ = users
    created = accounts.tokens.create(alice.id, "laptop")
    accounts.tokens.revoke(alice.id, created.info.id)
    assert accounts.tokens.authenticate(created.token) is None
    assert accounts.tokens.list_active(alice.id) == []
    with pytest.raises(NotFound):
        accounts.tokens.revoke(alice.id, created.info.id)


def test_users_cannot_revoke_or_see_each_others_tokens(accounts, users):
    alice, bob = users
    created = accounts.tokens.create(alice.id, "laptop")
    with pytest.raises(NotFound):
        accounts.tokens.revoke(bob.id, created.info.id)
    assert accounts.tokens.list_active(bob.id) == []
    assert accounts.tokens.authenticate(created.token) is not None


def test_ids_are_integers_counting_up_across_users(accounts, users):
    alice, bob = users
    first = accounts.tokens.create(alice.id, "laptop")
    second = accounts.tokens.create(bob.id, "ci")
    third = accounts.tokens.create(alice.id, "phone")
    assert all(type(t.info.id) is int for t in (first, second, third))
    assert 1 <= first.info.id < second.info.id < third.info.id
    assert [t.id for t in accounts.tokens.list_active(alice.id)] == [first.info.id, third.info.id]
    identity = accounts.tokens.authenticate(third.token)
    assert identity is not None and identity.token_id == third.info.id


@pytest.mark.parametrize("token_id", [0, -1, 2**31, 2**63, 10**30])
def test_ids_outside_the_column_range_are_not_found(accounts, users, token_id):
    alice, _ = users
    accounts.tokens.create(alice.id, "laptop")
    with pytest.raises(NotFound):
        accounts.tokens.revoke(alice.id, token_id)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1", 1), ("42", 42), ("2147483647", 2**31 - 1)]
    + [(bad, None) for bad in ("", "0", "-1", "+1", "01", "1.0", "1e3", " 1", "abc", "2147483648")]
    + [("f" * 32, None), ("\u0661", None), ("9" * 5000, None)],
)
def test_parse_token_id(text, expected):
    assert parse_token_id(text) == expected


def test_names_are_validated(accounts, users):
    alice, _ = users
    with pytest.raises(InvalidRequest):
        accounts.tokens.create(alice.id, "  ")
    with pytest.raises(InvalidRequest):
        accounts.tokens.create(alice.id, "x" * 101)


def test_custom_prefix(accounts, users):
    alice, _ = users
    tokens = ApiTokens(accounts.database, prefix="acme_")
    created = tokens.create(alice.id, "ci")
    assert created.token.startswith("acme_")
    assert tokens.authenticate(created.token) is not None
    assert accounts.tokens.authenticate(created.token) is None  # other prefix: malformed

"""Migration 0004: API tokens get integer ids; tokens made before it keep working."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import bindparam, text

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.tokens import token_digest
from serve_app.accounts.users import create_user
from serve_app.migrations.targets import target_metadata
from serve_app.storage.db import MIGRATIONS_DIR, Database, current_revision, migrate
from serve_app.storage.orm import UTCDateTime
from tests.support.databases import BACKENDS, FAST_SETTINGS, SESSION_KEY, drop_schema, new_schema

BEFORE = "0003_hold_leases"
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


@pytest.fixture(params=BACKENDS)
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A database with no schema yet: a SQLite file or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        database = Database(f"sqlite:///{tmp_path}/old.db")
        yield database
        database.dispose()
        return
    url = request.getfixturevalue("postgres_url")
    schema = new_schema(url)
    database = Database(url, schema=schema)
    try:
        yield database
    finally:
        database.dispose()
        drop_schema(url, schema)


def _old_token(database: Database, accounts: AccountsContext, user_id: int, when: dt.datetime):
    """A token as the 0003 code made it: a random hex id, the secret's digest."""
    secret = accounts.tokens.new_secret()
    hex_id = uuid.uuid4().hex
    with database.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_tokens (id, user_id, name, prefix, digest, created_at) "
                "VALUES (:id, :user_id, :name, :prefix, :digest, :created_at)"
            ).bindparams(bindparam("created_at", type_=UTCDateTime())),
            {
                "id": hex_id,
                "user_id": user_id,
                "name": f"made {when:%H:%M}",
                "prefix": secret[:9],
                "digest": token_digest(secret),
                "created_at": when,
            },
        )
    return hex_id, secret


def test_tokens_made_on_the_0003_schema_authenticate_after_the_migration(empty_database):
    database = empty_database
    migrate(database, BEFORE)
    accounts = AccountsContext.build(database, FAST_SETTINGS, SESSION_KEY)
    alice = create_user(database, accounts.passwords, "alice", "password123")
    bob = create_user(database, accounts.passwords, "bob", "password123")
    noon = dt.datetime(2025, 6, 1, 12, tzinfo=dt.UTC)
    # Inserted out of order: ids follow creation time, not insertion order.
    _, late = _old_token(database, accounts, alice.id, noon + dt.timedelta(hours=2))
    _, early = _old_token(database, accounts, bob.id, noon)
    _, middle = _old_token(database, accounts, alice.id, noon + dt.timedelta(hours=1))
    with database.engine.begin() as conn:
        conn.execute(
            text("UPDATE api_tokens SET revoked_at = created_at WHERE name = 'made 13:00'")
        )

    migrate(database)

    assert current_revision(database) == HEAD  # 0004 and every later revision
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, target_metadata) == []
    assert accounts.tokens.authenticate(middle) is None  # revoked before: still revoked
    late_identity = accounts.tokens.authenticate(late)
    early_identity = accounts.tokens.authenticate(early)
    assert late_identity is not None and late_identity.user.username == "alice"
    assert early_identity is not None and early_identity.user.username == "bob"
    assert (early_identity.token_id, late_identity.token_id) == (1, 3)
    (listed,) = accounts.tokens.list_active(alice.id)
    assert listed.id == 3 and listed.created_at == noon + dt.timedelta(hours=2)
    assert listed.last_used is not None  # the authentication above was recorded

    # New tokens continue the sequence (PostgreSQL's too) and revoke by integer id.
    created = accounts.tokens.create(alice.id, "after")
    assert created.info.id == 4
    accounts.tokens.revoke(alice.id, late_identity.token_id)
    assert accounts.tokens.authenticate(late) is None
    assert accounts.tokens.authenticate(created.token) is not None


def test_the_migration_goes_down_and_up_again(empty_database):
    database = empty_database
    migrate(database)
    accounts = AccountsContext.build(database, FAST_SETTINGS, SESSION_KEY)
    alice = create_user(database, accounts.passwords, "alice", "password123")
    first = accounts.tokens.create(alice.id, "first")
    second = accounts.tokens.create(alice.id, "second")

    _downgrade(database, BEFORE)
    with database.engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM api_tokens ORDER BY created_at")).scalars().all()
    assert ids == [str(first.info.id), str(second.info.id)]

    migrate(database)
    assert [t.id for t in accounts.tokens.list_active(alice.id)] == [1, 2]
    assert accounts.tokens.authenticate(second.token) is not None
    assert accounts.tokens.create(alice.id, "third").info.id == 3


def _downgrade(database: Database, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from serve_app.storage.db import MIGRATIONS_DIR

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

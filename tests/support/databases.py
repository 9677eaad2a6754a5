"""Database fixtures: every accounts test runs on SQLite and on PostgreSQL.

PostgreSQL: ``SERVE_APP_TEST_POSTGRES_URL`` or 127.0.0.1:5432, database ``test``, user
``postgres`` then ``root`` (trust auth). Each test session migrates a fresh random
schema (dropped at the end) and empties its tables before every test. When no server
answers, the PostgreSQL cases are skipped with the reason.

A pytest plugin (registered in ``tests/conftest.py``): request the fixtures by name.
"""

from __future__ import annotations

import os
import secrets
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from serve_app.accounts.context import AccountsContext
from serve_app.accounts.settings import AccountSettings
from serve_app.migrations.targets import target_metadata
from serve_app.storage.db import Database, migrate

BACKENDS = ["sqlite", "postgresql"]
#: Cheap argon2 so tests stay fast; production keeps the defaults.
FAST_SETTINGS = AccountSettings(argon2_time_cost=1, argon2_memory_kib=8, argon2_parallelism=1)
SESSION_KEY = b"k" * 32


def _candidate_urls() -> list[str]:
    configured = os.environ.get("SERVE_APP_TEST_POSTGRES_URL")
    if configured:
        return [configured]
    return [f"postgresql+psycopg://{user}@127.0.0.1:5432/test" for user in ("postgres", "root")]


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A reachable PostgreSQL URL, or skip."""
    problems = []
    for url in _candidate_urls():
        engine = create_engine(url, connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return url
        except Exception as exc:
            problems.append(f"{url}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        finally:
            engine.dispose()
    pytest.skip(
        "PostgreSQL not reachable (needs a server at 127.0.0.1:5432 with database 'test' "
        "and user postgres or root, trust auth; or set SERVE_APP_TEST_POSTGRES_URL): "
        + "; ".join(problems)
    )


def new_schema(url: str) -> str:
    schema = f"test_{uuid.uuid4().hex[:12]}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    return schema


def drop_schema(url: str, schema: str) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_database(postgres_url: str) -> Iterator[Database]:
    """A migrated PostgreSQL database in a schema of its own, for this test session."""
    schema = new_schema(postgres_url)
    database = Database(postgres_url, schema=schema)
    try:
        migrate(database)
        yield database
    finally:
        database.dispose()
        drop_schema(postgres_url, schema)


def _empty(database: Database) -> None:
    # DELETE beats TRUNCATE on tables this small (no new files, no fsync per table).
    with database.engine.begin() as conn:
        for table in reversed(target_metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "serve_app.db"
    database = Database(f"sqlite:///{path}")
    migrate(database)
    database.dispose()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A migrated, empty database: SQLite (a temp file) or PostgreSQL."""
    if request.param == "postgresql":
        database = request.getfixturevalue("postgres_database")
        _empty(database)
        yield database
        return
    path = tmp_path / "serve_app.db"
    shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
    database = Database(f"sqlite:///{path}")
    try:
        yield database
    finally:
        database.dispose()


@pytest.fixture
def accounts(database: Database) -> AccountsContext:
    """Accounts services over ``database`` with cheap password hashing."""
    return AccountsContext.build(database, FAST_SETTINGS, SESSION_KEY)


def random_password() -> str:
    return secrets.token_urlsafe(12)

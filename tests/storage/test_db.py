from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from threading import Barrier

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from serve_app.config import Settings
from serve_app.migrations.targets import target_metadata
from serve_app.storage.db import (
    MIGRATIONS_DIR,
    Database,
    current_revision,
    database_url_for,
    migrate,
)
from tests.support.databases import drop_schema, new_schema


def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


#: The newest migration (every domain adds its own revision).
HEAD = _head_revision()


def test_database_url_defaults_to_sqlite_in_the_data_dir(tmp_path):
    assert database_url_for(None, tmp_path) == f"sqlite:///{tmp_path.resolve()}/serve_app.db"
    assert database_url_for("", tmp_path).startswith("sqlite:///")


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql://u@h:5433/db", "postgresql+psycopg://u@h:5433/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
    ],
)
def test_database_url_normalization(given, expected):
    assert database_url_for(given, Path(".")) == expected


def test_settings_read_both_database_url_variables(monkeypatch):
    monkeypatch.delenv("SERVE_APP_DATABASE_URL", raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://plain/db")
    assert Settings().database_url == "postgresql://plain/db"
    monkeypatch.setenv("SERVE_APP_DATABASE_URL", "postgresql://prefixed/db")
    assert Settings().database_url == "postgresql://prefixed/db"
    assert Settings(database_url="sqlite:///x.db").database_url == "sqlite:///x.db"


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    database = Database(f"sqlite:///{tmp_path}/a.db", busy_timeout_ms=1234)
    with database.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 1234
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    database.dispose()


def test_migrations_match_the_models(database):
    with database.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, target_metadata) == []
    assert current_revision(database) == HEAD
    migrate(database)  # again: nothing to do
    assert current_revision(database) == HEAD


def _migrate_concurrently(make_database, n=6):
    barrier = Barrier(n)

    def run(_):
        database = make_database()
        try:
            barrier.wait()
            migrate(database)
            return current_revision(database)
        finally:
            database.dispose()

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(run, range(n)))


def test_replicas_starting_together_migrate_once_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path}/b.db"
    assert _migrate_concurrently(lambda: Database(url)) == [HEAD] * 6
    database = Database(url)
    assert "users" in inspect(database.engine).get_table_names()
    database.dispose()


def test_replicas_starting_together_migrate_once_on_postgres(postgres_url):
    schema = new_schema(postgres_url)
    try:
        revisions = _migrate_concurrently(lambda: Database(postgres_url, schema=schema))
        assert revisions == [HEAD] * 6
    finally:
        drop_schema(postgres_url, schema)


def test_transactions_roll_back_on_error(database):
    with pytest.raises(RuntimeError), database.transaction() as session:
        session.execute(
            text(
                "INSERT INTO users (username, password_hash, is_admin, balance, created_at) "
                "VALUES ('x', 'h', false, 0, CURRENT_TIMESTAMP)"
            )
        )
        raise RuntimeError
    with database.transaction() as session:
        assert session.execute(text("SELECT count(*) FROM users")).scalar() == 0


def test_new_sqlite_files_are_private(tmp_path):
    import stat

    database = Database(f"sqlite:///{tmp_path}/sub/p.db")
    migrate(database)
    for name in ("p.db", "p.db-wal"):
        path = tmp_path / "sub" / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    database.dispose()

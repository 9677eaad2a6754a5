"""The relational database: engine, transactions and migrations.

SQLite (a file in the data directory) is the embedded default; PostgreSQL is used
when a URL is configured (``SERVE_APP_DATABASE_URL`` or ``DATABASE_URL``), through
psycopg 3. A :class:`Database` is built once per process and passed in; there is no
global engine.

SQLite connections run in WAL mode with a busy timeout, and every transaction starts
with ``BEGIN IMMEDIATE``: writers queue on the busy timeout instead of failing with
"database is locked" when a read transaction later tries to write.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)

#: The Alembic scripts: ``serve_app/migrations``, a package above every domain (they
#: import all tables). Alembic loads them by path, so this module imports no domain.
MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"
#: Key of the PostgreSQL advisory lock held while migrating (any constant works).
MIGRATION_LOCK_KEY = 0x5E7E_A990


def database_url_for(configured: str | None, data_dir: Path) -> str:
    """The SQLAlchemy URL: ``configured`` (normalized) or SQLite in ``data_dir``."""
    if not configured:
        return f"sqlite:///{(Path(data_dir) / 'serve_app.db').resolve()}"
    url = configured.strip()
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


class Database:
    """An engine plus a session factory; ``transaction()`` is the unit of work.

    Args:
        url: A SQLAlchemy URL (``sqlite:///...`` or ``postgresql+psycopg://...``).
        schema: PostgreSQL only: put this schema first on the search path (tests use
            a fresh schema per run).
        busy_timeout_ms: SQLite only: how long a writer waits for the lock.
    """

    def __init__(
        self, url: str, *, schema: str | None = None, busy_timeout_ms: int = 30_000
    ) -> None:
        self.url = make_url(url)
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        kwargs: dict[str, Any] = {"pool_pre_ping": not self.is_sqlite}
        if self.is_sqlite:
            if self.url.database and self.url.database != ":memory:":
                _create_private_file(Path(self.url.database))
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": busy_timeout_ms / 1000}
            kwargs["pool_size"] = 8
            kwargs["max_overflow"] = 16
        else:
            kwargs["pool_size"] = 5
            kwargs["max_overflow"] = 20
            if schema:
                kwargs["connect_args"] = {"options": f"-csearch_path={schema}"}
        self.engine: Engine = create_engine(self.url, **kwargs)
        if self.is_sqlite:
            _configure_sqlite(self.engine, busy_timeout_ms)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def display_url(self) -> str:
        """The URL with any password hidden, for logs."""
        return self.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on error."""
        with self._sessions() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _create_private_file(path: Path) -> None:
    """Create the SQLite file readable by its owner only (it holds password hashes)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _enable_wal(cursor: Any, timeout_s: float) -> None:
    """Switch to WAL, waiting out other processes doing the same.

    Changing the journal mode takes an exclusive lock that SQLite does not wait for
    with the busy timeout: replicas opening a new database together get "database is
    locked" at once, so the switch is retried until ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy (not the driver) decide where transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        _enable_wal(cursor, busy_timeout_ms / 1000)
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def migrate(database: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision``; idempotent and safe from many processes.

    The whole upgrade runs in one transaction that first takes a lock (a PostgreSQL
    advisory lock, or SQLite's write lock through ``BEGIN IMMEDIATE``), so replicas
    starting together migrate one after another and the later ones find nothing to do.
    """
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    with database.engine.begin() as connection:
        if not database.is_sqlite:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
    logger.info("database %s migrated to %s", database.display_url, revision)


def current_revision(database: Database) -> str | None:
    """The applied migration revision, or None for an empty database."""
    from alembic.runtime.migration import MigrationContext

    with database.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()

"""Alembic environment, run programmatically by :func:`serve_app.storage.db.migrate`.

The caller passes an open connection (inside the locked migration transaction) in
``config.attributes["connection"]``. New revisions go in ``versions/`` (one file each,
``down_revision`` pointing at the previous head); register new models' modules in
:mod:`serve_app.migrations.targets`.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from serve_app.migrations.targets import target_metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through serve_app.storage.db.migrate(database)")

context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

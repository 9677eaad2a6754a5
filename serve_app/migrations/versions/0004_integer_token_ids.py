"""API tokens get integer ids (the documented ``GET /api/api_tokens`` shape).

Existing tokens keep their secrets (digests are copied) and are numbered 1, 2, ... in
order of creation. The table is rebuilt the same way on SQLite and PostgreSQL: copied
aside, recreated, filled back; PostgreSQL's id sequence then continues after the copies.

Revision ID: 0004_integer_token_ids
Revises: 0003_hold_leases
Create Date: 2025-01-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_integer_token_ids"
down_revision = "0003_hold_leases"
branch_labels = None
depends_on = None

_ASIDE = "api_tokens_before_0004"
_KEPT = "user_id, name, prefix, digest, created_at, last_used, revoked_at"


def _create_tokens_table(id_column: sa.Column[object]) -> None:
    def when(name: str, nullable: bool = False) -> sa.Column[object]:
        return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)

    op.create_table(
        "api_tokens",
        id_column,
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_api_tokens_user_id_users", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("prefix", sa.String(24), nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        when("created_at"),
        when("last_used", nullable=True),
        when("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("digest", name="uq_api_tokens_digest"),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])


def _rebuild(id_column: sa.Column[object], new_id: str) -> None:
    """Recreate ``api_tokens`` with ``id_column``, its ids computed by ``new_id`` (SQL)."""
    # Every name below is a constant of this module (no input reaches this SQL).
    op.execute(f"CREATE TABLE {_ASIDE} AS SELECT * FROM api_tokens")  # noqa: S608
    op.drop_index("ix_api_tokens_user_id", table_name="api_tokens")
    op.drop_table("api_tokens")
    _create_tokens_table(id_column)
    op.execute(
        f"INSERT INTO api_tokens (id, {_KEPT}) SELECT {new_id}, {_KEPT} FROM {_ASIDE}"  # noqa: S608
    )
    op.drop_table(_ASIDE)


def upgrade() -> None:
    _rebuild(
        sa.Column("id", sa.Integer(), nullable=False),
        "ROW_NUMBER() OVER (ORDER BY created_at, id)",
    )
    if op.get_bind().dialect.name == "postgresql":
        # The copies set their ids explicitly; new tokens continue after the largest.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('api_tokens', 'id'), "
            "COALESCE((SELECT MAX(id) FROM api_tokens), 0) + 1, false)"
        )


def downgrade() -> None:
    _rebuild(sa.Column("id", sa.String(32), nullable=False), "CAST(id AS VARCHAR(32))")

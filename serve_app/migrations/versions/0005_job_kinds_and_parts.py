"""Job kinds (``infer``, ``summary``) with their parameters, and per-part results.

Revision ID: 0005_job_kinds_and_parts
Revises: 0004_integer_token_ids
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_job_kinds_and_parts"
down_revision = "0004_integer_token_ids"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("video_jobs") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="infer"))
        batch.add_column(sa.Column("params_json", sa.Text(), nullable=True))
    op.create_table(
        "video_job_parts",
        sa.Column(
            "job_id",
            sa.String(36),
            sa.ForeignKey(
                "video_jobs.id", name="fk_video_job_parts_job_id_video_jobs", ondelete="CASCADE"
            ),
            nullable=False,
        ),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("payload_json", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "part", name="pk_video_job_parts"),
    )


def downgrade() -> None:
    op.drop_table("video_job_parts")
    with op.batch_alter_table("video_jobs") as batch:
        batch.drop_column("params_json")
        batch.drop_column("kind")

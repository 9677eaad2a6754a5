"""Video jobs: batch video inference with leases, attempts and progress.

Revision ID: 0002_video_jobs
Revises: 0001_accounts
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_video_jobs"
down_revision = "0001_accounts"
branch_labels = None
depends_on = None


def _when(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "video_jobs",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column(
            "user_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_video_jobs_user_id_users", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("input_key", sa.String(200), nullable=True),
        sa.Column("input_url", sa.Text(), nullable=True),
        sa.Column("infer_fps", sa.Float(), nullable=False),
        sa.Column("models_json", sa.Text(), nullable=False),
        sa.Column("callback_url", sa.Text(), nullable=True),
        sa.Column("callback_secret", sa.String(64), nullable=True),
        sa.Column("callback_state", sa.String(16), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        _when("lease_expires_at", nullable=True),
        _when("heartbeat_at", nullable=True),
        sa.Column("frames_done", sa.Integer(), nullable=False),
        sa.Column("frames_total", sa.Integer(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "reservation_id",
            sa.String(32),
            sa.ForeignKey(
                "reservations.id",
                name="fk_video_jobs_reservation_id_reservations",
                ondelete="SET NULL",
            ),
            nullable=True,
        ),
        sa.Column("billable", sa.Boolean(), nullable=False),
        sa.Column("credits_charged", sa.BigInteger(), nullable=False),
        sa.Column("result_key", sa.String(200), nullable=True),
        _when("created_at"),
        _when("updated_at"),
        _when("started_at", nullable=True),
        _when("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_video_jobs"),
    )
    op.create_index("ix_video_jobs_user_id", "video_jobs", ["user_id"])
    op.create_index("ix_video_jobs_status_created_at", "video_jobs", ["status", "created_at"])
    op.create_index(
        "ix_video_jobs_status_lease_expires_at", "video_jobs", ["status", "lease_expires_at"]
    )


def downgrade() -> None:
    op.drop_table("video_jobs")

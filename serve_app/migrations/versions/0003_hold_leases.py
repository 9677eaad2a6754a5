"""Credit holds of live requests carry a lease, renewed by the process that holds them.

Revision ID: 0003_hold_leases
Revises: 0002_video_jobs
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_hold_leases"
down_revision = "0002_video_jobs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("reservations") as batch:
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_reservations_state_lease_expires_at", "reservations", ["state", "lease_expires_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_reservations_state_lease_expires_at", table_name="reservations")
    with op.batch_alter_table("reservations") as batch:
        batch.drop_column("lease_expires_at")

"""processed_updates: update ids already taken, so a redelivered update is answered once.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "processed_updates",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("source", "update_id"),
    )
    op.create_index("ix_processed_updates_time", "processed_updates", ["time"])


def downgrade() -> None:
    op.drop_index("ix_processed_updates_time", table_name="processed_updates")
    op.drop_table("processed_updates")

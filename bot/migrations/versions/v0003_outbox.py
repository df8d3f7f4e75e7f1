"""processed_updates carries the outbox: the chat, the messages to send and how many were sent.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processed_updates") as batch:
        batch.add_column(sa.Column("chat", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("outbox", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("sent", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("pending", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_index(
        "ix_processed_updates_pending",
        "processed_updates",
        ["source", "chat"],
        postgresql_where=sa.text("pending"),
        sqlite_where=sa.text("pending"),
    )


def downgrade() -> None:
    op.drop_index("ix_processed_updates_pending", table_name="processed_updates")
    with op.batch_alter_table("processed_updates") as batch:
        batch.drop_column("pending")
        batch.drop_column("sent")
        batch.drop_column("outbox")
        batch.drop_column("chat")

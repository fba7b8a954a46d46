"""alert tombstones: the block hashes and fingerprints retractions named (with their engine time),
so that a finding handled after the retraction that retracts it is stored retracted

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 07:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_tombstones",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=66), nullable=False),
        sa.Column("at_ms", sa.Double(), nullable=True),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("kind", "key", name=op.f("pk_alert_tombstones")),
    )
    op.create_index(
        op.f("ix_alert_tombstones_recorded_at"), "alert_tombstones", ["recorded_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_alert_tombstones_recorded_at"), table_name="alert_tombstones")
    op.drop_table("alert_tombstones")

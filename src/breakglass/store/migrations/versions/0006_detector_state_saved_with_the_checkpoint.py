"""detector state saved with the checkpoint (breaches in progress, flow windows, set-up taint);
action steps waiting for their finding's incident

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 12:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "detect_state",
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("detector", sa.String(length=100), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("chain_id", "detector", name=op.f("pk_detect_state")),
    )
    op.create_table(
        "incident_pending_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incident_pending_actions")),
    )
    op.create_index(
        op.f("ix_incident_pending_actions_fingerprint"),
        "incident_pending_actions",
        ["fingerprint"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_incident_pending_actions_fingerprint"), table_name="incident_pending_actions")
    op.drop_table("incident_pending_actions")
    op.drop_table("detect_state")

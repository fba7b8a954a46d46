"""action steps say their chain (several chains in one deployment: each responder reads its own)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 18:15:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("respond_ledger") as batch:
        batch.add_column(sa.Column("chain_id", sa.BigInteger(), nullable=True))
        batch.create_index(batch.f("ix_respond_ledger_chain_id"), ["chain_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("respond_ledger") as batch:
        batch.drop_index(batch.f("ix_respond_ledger_chain_id"))
        batch.drop_column("chain_id")

"""alerts remember when their finding was observed and their retraction made (engine clock): a
finding of a retracted block observed after its retraction means the block is canonical again

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 04:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("observed_at_ms", sa.Double(), nullable=True))
        batch.add_column(sa.Column("retraction_at_ms", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("retraction_at_ms")
        batch.drop_column("observed_at_ms")

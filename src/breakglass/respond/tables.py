"""The response engine's tables, and creating them until the store's Alembic migrations own them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from breakglass.respond.ledger import ClaimRow, LedgerRow
from breakglass.respond.safe import SafeProposalRow, SafeSignatureRow
from breakglass.store.db import Base

__all__ = ["TABLES", "create_tables"]

TABLES = [t.__table__ for t in (ClaimRow, LedgerRow, SafeProposalRow, SafeSignatureRow)]


async def create_tables(engine: AsyncEngine) -> None:
    """Create the response tables that are missing; existing ones are left as they are."""
    async with engine.begin() as conn:
        await conn.run_sync(lambda sync: Base.metadata.create_all(sync, tables=TABLES))  # type: ignore[arg-type]

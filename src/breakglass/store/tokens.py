"""The API's access tokens table, stored as SHA-256 digests, never in clear.

The table lives in ``store`` (as the outbox does) so that ``store.tables`` lists every table without
importing ``breakglass.api``; ``breakglass.api.auth`` is its one user.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from breakglass.store.db import Base

__all__ = ["ApiToken"]


class ApiToken(Base):
    """One API token. ``lookup`` is a public identifier (the token's first characters), so that a
    presented token is found by an index and then compared to ``digest`` in constant time."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    lookup: Mapped[str] = mapped_column(String(16), unique=True)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)

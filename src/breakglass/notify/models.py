"""The notification log: what was sent to which channel for which incident event.

One row per (incident, channel, event); a send is skipped when its row says ``sent``, so a restart or
a repeated trigger never pages twice (Alertmanager's ``nflog`` + ``DedupStage``).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from breakglass.store.db import Base

__all__ = ["NotificationLog"]


class NotificationLog(Base):
    __tablename__ = "notification_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(100))
    event: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    """``sent`` or ``failed`` (after every attempt)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    at: Mapped[int] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (UniqueConstraint("incident_id", "channel", "event", name="uq_notification_log_event"),)

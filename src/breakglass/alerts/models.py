"""Alert and silence tables. An alert is a deduplicated finding: one row per fingerprint.

Alerts are never deleted: a reorg or a detector retracting a finding marks its alert ``retracted``.
What a retraction names is also kept for a while (``Tombstone``): its finding may come after it.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, Double, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from breakglass.messages.alerts import AlertChange
from breakglass.store.db import Base

__all__ = ["AlertRow", "AlertStatus", "Silence", "Tombstone", "TombstoneKind"]


class AlertStatus(enum.StrEnum):
    ACTIVE = "active"
    MUTED = "muted"
    """Silenced or inhibited (``muted_by`` says which)."""
    RETRACTED = "retracted"


class AlertRow(Base):
    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    monitor_id: Mapped[str] = mapped_column(String(100), index=True)
    severity: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger)
    block_hash: Mapped[str | None] = mapped_column(String(66), default=None, index=True)
    tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    stage: Mapped[str] = mapped_column(String(16))
    labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.ACTIVE.value, index=True)
    muted_by: Mapped[str | None] = mapped_column(String(120), default=None)
    receivers: Mapped[list[str]] = mapped_column(JSON, default=list)
    incident_id: Mapped[str | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"), default=None, index=True
    )
    first_seen_at: Mapped[int] = mapped_column(BigInteger)
    last_seen_at: Mapped[int] = mapped_column(BigInteger)
    count: Mapped[int] = mapped_column(Integer, default=1)
    retracted_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    observed_at_ms: Mapped[float | None] = mapped_column(Double, default=None)
    """The newest ``Finding.observed_at_ms`` of its raises (the detection engine's clock, kept exact:
    compared, never rounded); None: unknown."""
    retraction_at_ms: Mapped[float | None] = mapped_column(Double, default=None)
    """``Retraction.at_ms`` of the retraction that retracted it (the engine's clock); None: unknown.
    A finding of the same block observed after it means the block is canonical again."""

    def change(self) -> AlertChange:
        return AlertChange(self.fingerprint, self.status, self.count, self.incident_id)


class TombstoneKind(enum.StrEnum):
    BLOCK = "block"
    FINGERPRINT = "fingerprint"


class Tombstone(Base):
    """A block hash or a fingerprint a retraction named, kept for a while: findings and retractions
    come on two topics, and a finding handled after the retraction that retracts it is stored
    retracted (``alerts/tombstones.py``). Pruned by ``recorded_at``; one row per key."""

    __tablename__ = "alert_tombstones"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(66), primary_key=True)
    at_ms: Mapped[float | None] = mapped_column(Double, default=None)
    """The newest ``Retraction.at_ms`` that named it (the engine's clock); None: unknown (an older
    sender), which retracts a finding of any time, as ``AlertService.retract`` does, and stays None."""
    recorded_at: Mapped[int] = mapped_column(BigInteger, index=True)
    """When the alert stage last recorded it (its own clock): what pruning goes by."""


class Silence(Base):
    """Mutes alerts matching all ``matchers`` between ``starts_at`` and ``ends_at``."""

    __tablename__ = "silences"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    matchers: Mapped[list[str]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(100))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    starts_at: Mapped[int] = mapped_column(BigInteger)
    ends_at: Mapped[int] = mapped_column(BigInteger, index=True)

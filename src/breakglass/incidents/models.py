"""Incident tables and enums: the incident, its transitions, participants and tasks.

Times are integer milliseconds since the epoch (UTC) in every table, so SQLite and PostgreSQL store
and compare them identically and the audit hash of a row does not depend on a driver's datetime.
Notes live in the timeline (``breakglass.timeline``), which is append-only and chained.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from breakglass.incidents.states import IncidentState, Resolution
from breakglass.messages.incidents import IncidentChange
from breakglass.store.db import Base

__all__ = [
    "Incident",
    "IncidentChange",
    "IncidentFinding",
    "IncidentState",
    "Participant",
    "PendingAction",
    "Resolution",
    "Role",
    "Task",
    "TaskKind",
    "TaskStatus",
    "Transition",
]


class Role(enum.StrEnum):
    COMMANDER = "commander"
    RESPONDER = "responder"
    SCRIBE = "scribe"
    SIGNER = "signer"


class TaskKind(enum.StrEnum):
    TASK = "task"
    RATIFICATION = "ratification"
    """Governance must ratify an optimistic guardian pause before ``due_at``, or it lapses."""


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Incident(Base):
    __tablename__ = "incidents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    protocol: Mapped[str] = mapped_column(String(100))
    group_key: Mapped[str] = mapped_column(String(64), index=True)
    """Hash of the grouping labels' values; open incidents with this key take new alerts."""
    group_labels: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    severity: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=IncidentState.DETECTED.value, index=True)
    resolution: Mapped[str | None] = mapped_column(String(32), default=None)
    duplicate_of: Mapped[str | None] = mapped_column(String(32), default=None)
    created_at: Mapped[int] = mapped_column(BigInteger)
    onset_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """When the attack began on chain (first block's timestamp), if the evidence says so."""
    detected_at: Mapped[int] = mapped_column(BigInteger)
    triaged_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    contained_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    eradicated_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    recovered_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    closed_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    acknowledged_by: Mapped[str | None] = mapped_column(String(100), default=None)
    acknowledged_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    first_block: Mapped[int | None] = mapped_column(BigInteger, default=None)
    detected_block: Mapped[int | None] = mapped_column(BigInteger, default=None)
    contained_block: Mapped[int | None] = mapped_column(BigInteger, default=None)
    last_alert_at: Mapped[int] = mapped_column(BigInteger)
    alert_count: Mapped[int] = mapped_column(Integer, default=0)
    receivers: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Notification channels its alerts were routed to (the union)."""

    def __repr__(self) -> str:
        return f"Incident({self.id!r}, {self.state}, {self.title!r})"


class Transition(Base):
    """One move of the lifecycle: from, to, when, by whom."""

    __tablename__ = "incident_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    at: Mapped[int] = mapped_column(BigInteger)
    actor: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (Index("ix_incident_transitions_incident", "incident_id", "at"),)


class Participant(Base):
    __tablename__ = "incident_participants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    added_at: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (UniqueConstraint("incident_id", "name", "role", name="uq_incident_participants_who"),)


class Task(Base):
    """Work to do for an incident; ``ref`` makes creation idempotent for machine-made tasks."""

    __tablename__ = "incident_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16), default=TaskKind.TASK.value)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.OPEN.value)
    assignee: Mapped[str | None] = mapped_column(String(100), default=None)
    due_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    created_at: Mapped[int] = mapped_column(BigInteger)
    done_at: Mapped[int | None] = mapped_column(BigInteger, default=None)
    ref: Mapped[str | None] = mapped_column(String(200), default=None)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (UniqueConstraint("incident_id", "ref", name="uq_incident_tasks_ref"),)


class IncidentFinding(Base):
    """Which incident each finding (by fingerprint) went to: how actions find their incident."""

    __tablename__ = "incident_findings"

    fingerprint: Mapped[str] = mapped_column(String(64), primary_key=True)
    incident_id: Mapped[str] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"), index=True)
    monitor_id: Mapped[str] = mapped_column(String(100))
    severity: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66), default=None)
    attached_at: Mapped[int] = mapped_column(BigInteger)


class PendingAction(Base):
    """An action step whose finding was not in an incident yet when it arrived (the responder acts
    before the alert stage groups): held here until the finding is attached, then recorded in that
    incident's timeline (``incidents.actions.ActionRecorder.adopt``)."""

    __tablename__ = "incident_pending_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    fingerprint: Mapped[str] = mapped_column(String(64), index=True)
    record: Mapped[dict[str, Any]] = mapped_column(JSON)
    """``incidents.actions.action_record`` of the step"""
    at: Mapped[int] = mapped_column(BigInteger)

"""The incident service: open and join incidents, move them through the lifecycle, record people,
tasks and notes. Every change appends to the timeline in the same transaction.

Methods take the caller's ``AsyncSession`` and never commit: the CLI, the API and the pipeline own
their transactions (``breakglass.store.outbox.transaction``), so a failed step leaves nothing behind.
Returned rows are ORM objects of ``breakglass.incidents.models``; read them, do not mutate them.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from breakglass.bus import Topics
from breakglass.clock import Clock
from breakglass.domain import Finding, Severity
from breakglass.incidents.errors import IncidentClosed, IncidentNotFound
from breakglass.incidents.lifecycle import TIMESTAMP_FIELD, check_reopen, check_transition
from breakglass.incidents.models import (
    Incident,
    IncidentChange,
    IncidentFinding,
    IncidentState,
    Participant,
    Resolution,
    Role,
    Task,
    TaskKind,
    TaskStatus,
    Transition,
)
from breakglass.store.outbox import enqueue
from breakglass.timeline import (
    TimelineEntry,
    TimelineEvent,
    TimelineKind,
    append_event,
    list_events,
)

__all__ = ["Attachment", "IncidentService", "finding_record"]

OPEN_STATES = tuple(s.value for s in IncidentState if s is not IncidentState.CLOSED)


@dataclass(frozen=True, slots=True)
class Attachment:
    """Where a finding went: its incident, whether that was opened for it, whether it raised the
    incident's severity."""

    incident: Incident
    created: bool
    escalated: bool


def finding_record(finding: Finding) -> dict[str, Any]:
    """The timeline's view of a finding: everything a responder or a post-mortem needs."""
    return {
        "fingerprint": finding.fingerprint,
        "monitor_id": finding.monitor_id,
        "severity": str(finding.severity),
        "title": finding.title,
        "chain_id": finding.chain_id,
        "block_number": finding.block_number,
        "block_hash": finding.block_hash,
        "tx_hash": finding.tx_hash,
        "log_index": finding.log_index,
        "stage": finding.stage.value,
        "labels": dict(finding.labels),
        "evidence": dict(finding.evidence),
        "observed_at_ms": finding.observed_at_ms,
    }


class IncidentService:
    def __init__(self, clock: Clock, *, protocol: str = "protocol") -> None:
        self.clock = clock
        self.protocol = protocol
        self.on_attach: list[Callable[[AsyncSession, str, Incident], Awaitable[object]]] = []
        """Called in the transaction once a finding (by fingerprint) is attached to an incident
        (the action recorder records the steps that waited for it)."""

    # -- reading -------------------------------------------------------------------------------

    async def get(self, session: AsyncSession, incident_id: str) -> Incident:
        incident = await session.get(Incident, incident_id)
        if incident is None:
            raise IncidentNotFound(incident_id)
        return incident

    async def find(
        self,
        session: AsyncSession,
        *,
        states: set[IncidentState] | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[Incident]:
        """Newest first."""
        query = select(Incident)
        if states:
            query = query.where(Incident.state.in_([s.value for s in states]))
        query = query.order_by(Incident.created_at.desc(), Incident.id).limit(limit).offset(offset)
        return list((await session.scalars(query)).all())

    async def timeline(self, session: AsyncSession, incident_id: str) -> list[TimelineEntry]:
        await self.get(session, incident_id)
        return await list_events(session, incident_id=incident_id, limit=100_000)

    async def participants(self, session: AsyncSession, incident_id: str) -> list[Participant]:
        query = select(Participant).where(Participant.incident_id == incident_id)
        return list((await session.scalars(query.order_by(Participant.id))).all())

    async def tasks(self, session: AsyncSession, incident_id: str) -> list[Task]:
        query = select(Task).where(Task.incident_id == incident_id).order_by(Task.id)
        return list((await session.scalars(query)).all())

    async def transitions(self, session: AsyncSession, incident_id: str) -> list[Transition]:
        query = select(Transition).where(Transition.incident_id == incident_id)
        return list((await session.scalars(query.order_by(Transition.id))).all())

    async def for_fingerprint(self, session: AsyncSession, fingerprint: str) -> Incident | None:
        """The incident a finding (by fingerprint) was grouped into, if any."""
        link = await session.get(IncidentFinding, fingerprint)
        return None if link is None else await session.get(Incident, link.incident_id)

    async def state_mismatches(self, session: AsyncSession) -> list[str]:
        """Incidents whose ``state`` differs from the last state change their chained timeline records:
        every transition writes both in one transaction, so a difference is an edit of the row."""
        last: dict[str, str] = {}
        entries = await session.execute(
            select(TimelineEvent.incident_id, TimelineEvent.data)
            .where(TimelineEvent.kind == TimelineKind.STATE_CHANGE.value)
            .order_by(TimelineEvent.seq)
        )
        for incident_id, data in entries:
            if incident_id is not None and isinstance(data, dict) and data.get("to"):
                last[incident_id] = str(data["to"])
        out: list[str] = []
        for incident_id, state in await session.execute(select(Incident.id, Incident.state)):
            if last.get(incident_id) != state:
                out.append(
                    f"incident {incident_id}: state {state!r}, its timeline says {last.get(incident_id)!r}"
                )
        return out

    # -- findings ------------------------------------------------------------------------------

    async def attach_finding(
        self,
        session: AsyncSession,
        finding: Finding,
        *,
        group_key: str,
        group_labels: Mapping[str, str],
        window_ms: int,
    ) -> Attachment:
        """Put ``finding`` into the open incident of its group seen within the window, or open one.

        Idempotent per fingerprint: a finding already attached returns its incident, unchanged.
        """
        now = self.clock.now_ms()
        linked = await self.for_fingerprint(session, finding.fingerprint)
        if linked is not None:
            return Attachment(linked, created=False, escalated=False)
        query = (
            select(Incident)
            .where(Incident.group_key == group_key, Incident.state.in_(OPEN_STATES))
            .where(Incident.last_alert_at >= now - window_ms)
            .order_by(Incident.created_at.desc())
            .limit(1)
        )
        incident = (await session.scalars(query)).first()
        created = incident is None
        seen = int(finding.observed_at_ms) or now
        if incident is None:
            incident = Incident(
                id="inc-" + secrets.token_hex(5), title=finding.title, protocol=self.protocol,
                group_key=group_key, group_labels=dict(group_labels), severity=int(finding.severity),
                state=IncidentState.DETECTED.value, created_at=now, detected_at=seen,
                detected_block=finding.block_number, first_block=finding.block_number,
                last_alert_at=now, alert_count=0,
            )  # fmt: skip
            session.add(incident)
            await session.flush()
            opened = {"from": None, "to": IncidentState.DETECTED.value, "title": finding.title}
            await self._event(session, incident.id, TimelineKind.STATE_CHANGE, "breakglass", opened)
        escalated = not created and finding.severity > incident.severity
        if finding.severity > incident.severity:
            incident.severity = int(finding.severity)
            incident.title = finding.title
        incident.last_alert_at = now
        incident.alert_count += 1
        first_block = _int(finding.evidence.get("first_block"), finding.block_number)
        incident.first_block = min(incident.first_block or first_block, first_block)
        onset = _onset_ms(finding.evidence)
        if onset is not None:
            incident.onset_at = min(incident.onset_at or onset, onset)
        session.add(IncidentFinding(
            fingerprint=finding.fingerprint, incident_id=incident.id, monitor_id=finding.monitor_id,
            severity=int(finding.severity), block_number=finding.block_number,
            tx_hash=finding.tx_hash, attached_at=now,
        ))  # fmt: skip
        await self._event(session, incident.id, TimelineKind.FINDING, finding.monitor_id,
                          finding_record(finding))  # fmt: skip
        await session.flush()
        for hook in self.on_attach:
            await hook(session, finding.fingerprint, incident)
        if created:
            change = IncidentChange(incident.id, "opened")
        elif escalated:
            change = IncidentChange(incident.id, "escalated", str(finding.severity))
        else:
            change = IncidentChange(incident.id, "updated")
        enqueue(session, Topics.INCIDENTS, change)
        return Attachment(incident, created=created, escalated=escalated)

    # -- lifecycle -----------------------------------------------------------------------------

    async def transition(
        self,
        session: AsyncSession,
        incident_id: str,
        to: IncidentState,
        *,
        actor: str,
        resolution: Resolution | None = None,
        reason: str | None = None,
        duplicate_of: str | None = None,
        block: int | None = None,
    ) -> Incident:
        """Move to ``to`` if the lifecycle allows it; stamps the state's timestamp and the timeline.

        A compare-and-set on the state the move was checked against: when another transaction moved
        the incident meanwhile, nothing is written and ``StaleDataError`` asks the caller to rerun
        its transaction (``in_transaction`` does), which re-reads the state and decides again.
        """
        incident = await self.get(session, incident_id)
        current = IncidentState(incident.state)
        check_transition(incident_id, current, to, resolution, duplicate_of)
        if duplicate_of is not None:
            await self.get(session, duplicate_of)
        now = self.clock.now_ms()
        values: dict[str, Any] = {"state": to.value, TIMESTAMP_FIELD[to]: now}
        if to is IncidentState.CONTAINED and block is not None:
            values["contained_block"] = block
        if resolution is not None:
            values["resolution"] = resolution.value
            values["duplicate_of"] = duplicate_of
        await _compare_and_set(session, incident, current, values)
        session.add(Transition(incident_id=incident_id, from_state=current.value,
                               to_state=to.value, at=now, actor=actor, reason=reason))  # fmt: skip
        data: dict[str, Any] = {"from": current.value, "to": to.value, "reason": reason}
        if resolution is not None:
            data["resolution"] = resolution.value
        if duplicate_of is not None:
            data["duplicate_of"] = duplicate_of
        await self._event(session, incident_id, TimelineKind.STATE_CHANGE, actor, data)
        enqueue(session, Topics.INCIDENTS, IncidentChange(incident_id, "state", to.value))
        return incident

    async def reopen(self, session: AsyncSession, incident_id: str, *, actor: str, reason: str) -> Incident:
        """Open a closed incident again, in the state it was closed from; its resolution is cleared.

        The only change a closed incident takes. A compare-and-set like :meth:`transition`.
        """
        incident = await self.get(session, incident_id)
        current = IncidentState(incident.state)
        check_reopen(incident_id, current)
        query = (
            select(Transition.from_state)
            .where(Transition.incident_id == incident_id, Transition.to_state == current.value)
            .order_by(Transition.id.desc())
            .limit(1)
        )
        before = IncidentState((await session.scalar(query)) or IncidentState.TRIAGED.value)
        values = {"state": before.value, "closed_at": None, "resolution": None, "duplicate_of": None}
        await _compare_and_set(session, incident, current, values)
        now = self.clock.now_ms()
        session.add(Transition(incident_id=incident_id, from_state=current.value,
                               to_state=before.value, at=now, actor=actor, reason=reason))  # fmt: skip
        data = {"from": current.value, "to": before.value, "reason": reason, "reopened": True}
        await self._event(session, incident_id, TimelineKind.STATE_CHANGE, actor, data)
        enqueue(session, Topics.INCIDENTS, IncidentChange(incident_id, "state", before.value))
        return incident

    async def hold_open(self, session: AsyncSession, incident_id: str) -> Incident:
        """The incident, if it is open, held so until this transaction ends; else ``IncidentClosed``.

        For people's changes (notes, severity, tasks, participants): a closed incident takes none
        but a reopen. The row is written (its state onto itself), which serialises the change with a
        concurrent close: on PostgreSQL by the row lock, on SQLite by the write lock.
        """
        incident = await self.get(session, incident_id)
        if incident.state == IncidentState.CLOSED.value:
            raise IncidentClosed(incident_id)
        await _compare_and_set(session, incident, IncidentState(incident.state), {"state": incident.state})
        return incident

    async def acknowledge(self, session: AsyncSession, incident_id: str, *, actor: str) -> Incident:
        """Someone took it: records who, makes them commander if there is none, and triages it."""
        incident = await self.hold_open(session, incident_id)
        if incident.acknowledged_by is None:
            incident.acknowledged_by = actor
            incident.acknowledged_at = self.clock.now_ms()
            await self._event(session, incident_id, TimelineKind.NOTE, actor,
                              {"text": f"acknowledged by {actor}", "ack": True})  # fmt: skip
        roles = {p.role for p in await self.participants(session, incident_id)}
        if Role.COMMANDER.value not in roles:
            await self.add_participant(session, incident_id, name=actor, role=Role.COMMANDER,
                                       actor=actor)  # fmt: skip
        if incident.state == IncidentState.DETECTED.value:
            await self.transition(session, incident_id, IncidentState.TRIAGED, actor=actor,
                                  reason="acknowledged")  # fmt: skip
        return incident

    async def escalate(
        self, session: AsyncSession, incident_id: str, severity: Severity, *, actor: str
    ) -> Incident:
        incident = await self.get(session, incident_id)
        if severity > incident.severity:
            before = Severity(incident.severity)
            incident.severity = int(severity)
            await self._event(session, incident_id, TimelineKind.STATE_CHANGE, actor,
                              {"severity": str(severity), "from_severity": str(before)})  # fmt: skip
            enqueue(session, Topics.INCIDENTS, IncidentChange(incident_id, "escalated", str(severity)))
        return incident

    # -- people, tasks, notes ------------------------------------------------------------------

    async def add_note(
        self, session: AsyncSession, incident_id: str, *, actor: str, text: str
    ) -> TimelineEntry:
        await self.get(session, incident_id)
        return await self._event(session, incident_id, TimelineKind.NOTE, actor, {"text": text})

    async def add_participant(
        self, session: AsyncSession, incident_id: str, *, name: str, role: Role, actor: str
    ) -> Participant:
        """Idempotent: the same person in the same role is recorded once."""
        await self.get(session, incident_id)
        query = select(Participant).where(
            Participant.incident_id == incident_id,
            Participant.name == name,
            Participant.role == role.value,
        )
        existing = (await session.scalars(query)).first()
        if existing is not None:
            return existing
        row = Participant(incident_id=incident_id, name=name, role=role.value,
                          added_at=self.clock.now_ms())  # fmt: skip
        session.add(row)
        await self._event(session, incident_id, TimelineKind.PARTICIPANT, actor,
                          {"name": name, "role": role.value})  # fmt: skip
        return row

    async def add_task(
        self,
        session: AsyncSession,
        incident_id: str,
        *,
        title: str,
        actor: str,
        kind: TaskKind = TaskKind.TASK,
        due_at: int | None = None,
        assignee: str | None = None,
        ref: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> Task:
        """A task; with ``ref`` set, asking twice returns the first (machine-made tasks)."""
        await self.get(session, incident_id)
        if ref is not None:
            query = select(Task).where(Task.incident_id == incident_id, Task.ref == ref)
            existing = (await session.scalars(query)).first()
            if existing is not None:
                return existing
        task = Task(incident_id=incident_id, title=title, kind=kind.value, due_at=due_at,
                    assignee=assignee, created_at=self.clock.now_ms(), ref=ref,
                    status=TaskStatus.OPEN.value, data=dict(data or {}))  # fmt: skip
        session.add(task)
        await session.flush()
        await self._event(session, incident_id, TimelineKind.TASK, actor,
                          {"task": task.id, "title": title, "kind": kind.value, "due_at": due_at,
                           "status": task.status, "assignee": assignee})  # fmt: skip
        return task

    async def set_task_status(
        self, session: AsyncSession, task_id: int, status: TaskStatus, *, actor: str
    ) -> Task:
        task = await session.get(Task, task_id)
        if task is None:
            raise IncidentNotFound(str(task_id), "task")
        if task.status != status.value:
            task.status = status.value
            task.done_at = self.clock.now_ms() if status is not TaskStatus.OPEN else None
            await self._event(session, task.incident_id, TimelineKind.TASK, actor,
                              {"task": task.id, "title": task.title, "status": status.value})  # fmt: skip
        return task

    async def record(
        self,
        session: AsyncSession,
        incident_id: str,
        kind: TimelineKind,
        *,
        actor: str,
        data: Mapping[str, Any],
    ) -> TimelineEntry:
        """Append any typed event (action, transaction, signature...) to an incident's timeline."""
        await self.get(session, incident_id)
        return await self._event(session, incident_id, kind, actor, data)

    async def _event(
        self,
        session: AsyncSession,
        incident_id: str,
        kind: TimelineKind,
        actor: str,
        data: Mapping[str, Any],
    ) -> TimelineEntry:
        return await append_event(session, kind=kind, actor=actor, at=self.clock.now_ms(),
                                  data=data, incident_id=incident_id)  # fmt: skip


async def _compare_and_set(
    session: AsyncSession, incident: Incident, expected: IncidentState, values: dict[str, Any]
) -> None:
    """Write ``values`` only if the incident is still in ``expected``; else ``StaleDataError``."""
    statement = (
        update(Incident)
        .where(Incident.id == incident.id, Incident.state == expected.value)
        .values(**values)
        .execution_options(synchronize_session="evaluate")
    )
    result = await session.execute(statement)
    if not isinstance(result, CursorResult) or result.rowcount != 1:
        raise StaleDataError(f"incident {incident.id} left {expected} meanwhile; rerun the transaction")


def _int(value: Any, default: int) -> int:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default


def _onset_ms(evidence: Mapping[str, Any]) -> int | None:
    """The attack's first on-chain moment, if a detector put it in the evidence."""
    if "onset_ms" in evidence:
        return _int(evidence["onset_ms"], 0) or None
    if "block_timestamp" in evidence:
        return _int(evidence["block_timestamp"], 0) * 1000 or None
    return None

"""The adapter from the response engine's ``ActionEvent`` (``Topics.ACTIONS``) to incidents.

The only module that knows ``breakglass.messages.actions``. Each event goes to the timeline of the
incident its finding was grouped into. One that arrives before its finding is grouped (the responder
acts before the alert stage has stored the finding) goes to the audit chain and waits in
``incident_pending_actions``: when the finding is attached to an incident (``adopt``, called by the
incident service), it is recorded in that incident's timeline and takes its effect (containment,
ratification task) then. A confirmed guardian
transaction or an executed Safe transaction contains the incident; a ratification window becomes a
task due at its deadline; ``escalate`` raises the severity.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from breakglass.domain import Severity
from breakglass.incidents.models import Incident, IncidentState, PendingAction, TaskKind, TaskStatus
from breakglass.incidents.service import IncidentService
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.timeline import TimelineKind, record_audit

__all__ = ["ActionRecorder", "action_record"]

_TX_STEPS = {ActionStep.SIGNED, ActionStep.SUBMITTED, ActionStep.REPLACED, ActionStep.CONFIRMED,
             ActionStep.FAILED, ActionStep.EXECUTED, ActionStep.REORGED}  # fmt: skip
_CONTAINING = {ActionStep.CONFIRMED, ActionStep.EXECUTED}
_CONTAINABLE = {IncidentState.DETECTED, IncidentState.TRIAGED}
_PENDING_MS = 24 * 3600 * 1000
"""How long a step waits for its finding's incident."""


def action_record(event: ActionEvent) -> dict[str, Any]:
    return {
        "step": event.step.value, "key": event.key, "playbook": event.playbook,
        "action": event.action, "target": event.target, "fingerprint": event.finding_fingerprint,
        "monitor_id": event.monitor_id, "tx_hash": event.tx_hash, "nonce": event.nonce,
        "detail": dict(event.detail), "at_ms": event.at_ms,
        **({"chain_id": event.chain_id} if event.chain_id is not None else {}),
    }  # fmt: skip


def _event(record: dict[str, Any]) -> ActionEvent:
    """Back from ``action_record``."""
    return ActionEvent(
        step=ActionStep(record["step"]), key=record["key"], playbook=record["playbook"],
        action=record["action"], target=record["target"], finding_fingerprint=record["fingerprint"],
        monitor_id=record.get("monitor_id", ""), tx_hash=record.get("tx_hash"), nonce=record.get("nonce"),
        detail=dict(record.get("detail") or {}), at_ms=float(record.get("at_ms") or 0.0),
        chain_id=record.get("chain_id"),
    )  # fmt: skip


def _kind(step: ActionStep, event: ActionEvent) -> TimelineKind:
    if step is ActionStep.SAFE_SIGNED:
        return TimelineKind.SIGNATURE
    if step in _TX_STEPS and event.tx_hash:
        return TimelineKind.TRANSACTION
    return TimelineKind.ACTION


class ActionRecorder:
    def __init__(self, incidents: IncidentService) -> None:
        self.incidents = incidents

    async def record(self, session: AsyncSession, event: ActionEvent) -> Incident | None:
        """Record ``event``; returns the incident it belongs to, if any."""
        actor = f"responder:{event.playbook}" if event.playbook else "responder"
        step = ActionStep(event.step)
        incident = await self.incidents.for_fingerprint(session, event.finding_fingerprint)
        if incident is None:
            now = self.incidents.clock.now_ms()
            await record_audit(session, actor=actor, action=f"action.{step.value}", at=now,
                               target=event.target, details=action_record(event))  # fmt: skip
            session.add(
                PendingAction(fingerprint=event.finding_fingerprint, record=action_record(event), at=now)
            )
            # a finding that never reaches an incident (below the incidents' severity, muted) leaves
            # its steps in the audit chain only
            await session.execute(delete(PendingAction).where(PendingAction.at < now - _PENDING_MS))
            return None
        await self._apply(session, incident, event)
        return incident

    async def adopt(self, session: AsyncSession, fingerprint: str, incident: Incident) -> int:
        """Record the steps that waited for ``fingerprint``'s incident, in order; returns how many."""
        query = (
            select(PendingAction).where(PendingAction.fingerprint == fingerprint).order_by(PendingAction.id)
        )
        waiting = list((await session.scalars(query)).all())
        for row in waiting:
            await self._apply(session, incident, _event(row.record), late=True)
        if waiting:
            await session.execute(delete(PendingAction).where(PendingAction.fingerprint == fingerprint))
        return len(waiting)

    async def _apply(
        self, session: AsyncSession, incident: Incident, event: ActionEvent, *, late: bool = False
    ) -> None:
        actor = f"responder:{event.playbook}" if event.playbook else "responder"
        step = ActionStep(event.step)
        data = {**action_record(event), "late": True} if late else action_record(event)
        await self.incidents.record(session, incident.id, _kind(step, event), actor=actor, data=data)
        state = IncidentState(incident.state)
        if step in _CONTAINING and state in _CONTAINABLE and event.detail.get("containment", True):
            block = event.detail.get("block_number")
            await self.incidents.transition(
                session, incident.id, IncidentState.CONTAINED, actor=actor,
                reason=f"{event.action} {step.value}: {event.target}",
                block=int(block) if block is not None else None,
            )  # fmt: skip
        elif step is ActionStep.RATIFICATION_OPENED:
            deadline = event.detail.get("deadline")
            await self.incidents.add_task(
                session, incident.id, actor=actor, kind=TaskKind.RATIFICATION, ref=event.key,
                title=f"Governance ratifies {event.target} ({event.playbook}.{event.action})",
                due_at=int(deadline) * 1000 if deadline is not None else None,
                data=dict(event.detail),
            )  # fmt: skip
        elif step in (ActionStep.RATIFIED, ActionStep.LAPSED):
            for task in await self.incidents.tasks(session, incident.id):
                if task.ref == event.key and task.kind == TaskKind.RATIFICATION.value:
                    done = TaskStatus.DONE if step is ActionStep.RATIFIED else TaskStatus.CANCELLED
                    await self.incidents.set_task_status(session, task.id, done, actor=actor)
        elif step is ActionStep.WITHHELD:  # the lookout left the decision to people
            look = event.detail.get("look") or {}
            await self.incidents.add_task(
                session, incident.id, actor=actor, kind=TaskKind.TASK, ref=event.key,
                title=f"Decide: {event.target} withheld ({look.get('reason', 'harm to honest traffic')})",
                data=dict(event.detail),
            )  # fmt: skip
        elif step is ActionStep.ESCALATE:
            try:
                severity = Severity.parse(str(event.detail.get("severity", "")))
            except ValueError:
                severity = None
            if severity is not None:
                await self.incidents.escalate(session, incident.id, severity, actor=actor)

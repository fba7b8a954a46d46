"""``/api/v1/incidents``: read incidents (viewer); acknowledge, move, annotate and staff them (responder).

Every write goes through ``IncidentService`` in one transaction with its audit record, so the change,
its timeline events and the audit entry commit together or not at all.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from breakglass.api.access import GuardedRoute, Responder, Viewer
from breakglass.api.context import Ctx
from breakglass.api.schemas import (
    INT32_MAX,
    INT64_MAX,
    NO_NUL,
    NOT_FOUND,
    ApiInput,
    BodyInt,
    TimelineOut,
    severity_name,
    text,
)
from breakglass.domain import Severity
from breakglass.incidents.errors import IncidentNotFound
from breakglass.incidents.metrics import incident_metrics
from breakglass.incidents.models import (
    Incident,
    IncidentState,
    Participant,
    Resolution,
    Task,
    TaskStatus,
    Transition,
)
from breakglass.incidents.models import Role as IncidentRole
from breakglass.timeline import TimelineEntry, TimelineKind

__all__ = ["IncidentDetail", "IncidentOut", "NoteIn", "ReopenIn", "TransitionIn", "router"]

router = APIRouter(prefix="/api/v1/incidents", tags=["incidents"], route_class=GuardedRoute)

IncidentId = Annotated[str, Field(min_length=1, max_length=32, pattern=NO_NUL)]
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "the lifecycle does not allow it (a closed incident takes nothing but a reopen)"}
}


class IncidentOut(BaseModel):
    id: str
    title: str
    protocol: str
    severity: str
    state: str
    resolution: str | None
    duplicate_of: str | None
    created_at: int
    onset_at: int | None
    detected_at: int
    triaged_at: int | None
    contained_at: int | None
    eradicated_at: int | None
    recovered_at: int | None
    closed_at: int | None
    acknowledged_by: str | None
    acknowledged_at: int | None
    first_block: int | None
    detected_block: int | None
    contained_block: int | None
    last_alert_at: int
    alert_count: int
    group_labels: dict[str, str]

    @classmethod
    def of(cls, row: Incident) -> IncidentOut:
        fields = {name: getattr(row, name) for name in cls.model_fields if name != "severity"}
        return cls(severity=severity_name(row.severity), **fields)


class ParticipantOut(BaseModel):
    name: str
    role: str
    added_at: int

    @classmethod
    def of(cls, row: Participant) -> ParticipantOut:
        return cls(name=row.name, role=row.role, added_at=row.added_at)


class TaskOut(BaseModel):
    id: int
    title: str
    kind: str
    status: str
    assignee: str | None
    due_at: int | None
    created_at: int
    done_at: int | None

    @classmethod
    def of(cls, row: Task) -> TaskOut:
        return cls(**{name: getattr(row, name) for name in cls.model_fields})


class TransitionOut(BaseModel):
    from_state: str
    to_state: str
    at: int
    actor: str
    reason: str | None

    @classmethod
    def of(cls, row: Transition) -> TransitionOut:
        return cls(**{name: getattr(row, name) for name in cls.model_fields})


class Metrics(BaseModel):
    ttd_ms: int | None = None
    ttc_ms: int | None = None
    ttr_ms: int | None = None
    ttd_blocks: int | None = None
    ttc_blocks: int | None = None


class IncidentDetail(BaseModel):
    incident: IncidentOut
    metrics: Metrics
    participants: list[ParticipantOut]
    tasks: list[TaskOut]
    transitions: list[TransitionOut]


class TransitionIn(ApiInput):
    to: IncidentState
    resolution: Resolution | None = None
    reason: str | None = Field(default=None, max_length=2000, pattern=NO_NUL)
    duplicate_of: IncidentId | None = None
    block: BodyInt | None = Field(default=None, ge=0, le=INT64_MAX)
    """The block containment took effect in (``contained`` only)."""


class ReopenIn(ApiInput):
    reason: str = text(2000)


class NoteIn(ApiInput):
    text: str = text(10_000)


class ParticipantIn(ApiInput):
    name: str = text(100)
    role: IncidentRole


class TaskIn(ApiInput):
    title: str = text(300)
    due_at: BodyInt | None = Field(default=None, ge=0, le=2**53)
    """Milliseconds since the epoch."""
    assignee: str | None = Field(default=None, min_length=1, max_length=100, pattern=NO_NUL)


class TaskStatusIn(ApiInput):
    status: TaskStatus


class SeverityIn(ApiInput):
    severity: str = Field(pattern=r"^(info|low|medium|high|critical)$")


@router.get("", response_model=list[IncidentOut])
async def list_incidents(
    ctx: Ctx,
    _who: Viewer,
    state: Annotated[list[IncidentState] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[IncidentOut]:
    """Newest first; ``state`` may repeat (``?state=detected&state=triaged``)."""
    async with ctx.reading() as session:
        rows = await ctx.incidents.find(session, states=set(state or ()), limit=limit, offset=offset)
    return [IncidentOut.of(row) for row in rows]


@router.get("/{incident_id}", response_model=IncidentDetail, responses=NOT_FOUND)
async def get_incident(incident_id: IncidentId, ctx: Ctx, _who: Viewer) -> IncidentDetail:
    async with ctx.reading() as session:
        incident = await ctx.incidents.get(session, incident_id)
        participants = await ctx.incidents.participants(session, incident_id)
        tasks = await ctx.incidents.tasks(session, incident_id)
        transitions = await ctx.incidents.transitions(session, incident_id)
    metrics = incident_metrics(incident)
    return IncidentDetail(
        incident=IncidentOut.of(incident),
        metrics=Metrics(**{name: getattr(metrics, name) for name in Metrics.model_fields}),
        participants=[ParticipantOut.of(p) for p in participants],
        tasks=[TaskOut.of(t) for t in tasks],
        transitions=[TransitionOut.of(t) for t in transitions],
    )


@router.get("/{incident_id}/timeline", response_model=list[TimelineOut], responses=NOT_FOUND)
async def incident_timeline(
    incident_id: IncidentId,
    ctx: Ctx,
    _who: Viewer,
    kind: Annotated[list[TimelineKind] | None, Query()] = None,
) -> list[TimelineOut]:
    """The incident's events in chain order, audit records included unless ``kind`` narrows it."""
    async with ctx.reading() as session:
        entries = await ctx.incidents.timeline(session, incident_id)
    kinds = set(kind or ())
    return [TimelineOut.of(e) for e in entries if not kinds or e.kind in kinds]


@router.post("/{incident_id}/acknowledge", response_model=IncidentOut, responses={**NOT_FOUND, **CONFLICT})
async def acknowledge(incident_id: IncidentId, ctx: Ctx, who: Responder) -> IncidentOut:
    """Take the incident: records who, makes them commander if there is none, moves detected -> triaged."""

    async def work(session: AsyncSession) -> Incident:
        incident = await ctx.incidents.acknowledge(session, incident_id, actor=who.name)
        await ctx.audit(session, who, "incident.acknowledge", incident_id, incident_id=incident_id)
        return incident

    return IncidentOut.of(await ctx.write(work))


@router.post("/{incident_id}/transition", response_model=IncidentOut, responses={**NOT_FOUND, **CONFLICT})
async def transition(incident_id: IncidentId, body: TransitionIn, ctx: Ctx, who: Responder) -> IncidentOut:
    """Move along the lifecycle (forward only; closing needs a resolution)."""

    async def work(session: AsyncSession) -> Incident:
        incident = await ctx.incidents.transition(
            session, incident_id, body.to, actor=who.name, resolution=body.resolution,
            reason=body.reason, duplicate_of=body.duplicate_of, block=body.block,
        )  # fmt: skip
        await ctx.audit(session, who, "incident.transition", incident_id, incident_id=incident_id,
                        details=body.model_dump(mode="json", exclude_none=True))  # fmt: skip
        return incident

    return IncidentOut.of(await ctx.write(work))


@router.post("/{incident_id}/reopen", response_model=IncidentOut, responses={**NOT_FOUND, **CONFLICT})
async def reopen(incident_id: IncidentId, body: ReopenIn, ctx: Ctx, who: Responder) -> IncidentOut:
    """Open a closed incident again, in the state it was closed from (the only change a closed one takes)."""

    async def work(session: AsyncSession) -> Incident:
        incident = await ctx.incidents.reopen(session, incident_id, actor=who.name, reason=body.reason)
        await ctx.audit(session, who, "incident.reopen", incident_id, incident_id=incident_id,
                        details={"reason": body.reason})  # fmt: skip
        return incident

    return IncidentOut.of(await ctx.write(work))


@router.post("/{incident_id}/severity", response_model=IncidentOut, responses={**NOT_FOUND, **CONFLICT})
async def escalate(incident_id: IncidentId, body: SeverityIn, ctx: Ctx, who: Responder) -> IncidentOut:
    """Raise the severity (never lowers it)."""

    async def work(session: AsyncSession) -> Incident:
        await ctx.incidents.hold_open(session, incident_id)
        incident = await ctx.incidents.escalate(
            session, incident_id, Severity.parse(body.severity), actor=who.name
        )
        await ctx.audit(session, who, "incident.escalate", incident_id, incident_id=incident_id,
                        details={"severity": body.severity})  # fmt: skip
        return incident

    return IncidentOut.of(await ctx.write(work))


@router.post(
    "/{incident_id}/notes", response_model=TimelineOut, status_code=201, responses={**NOT_FOUND, **CONFLICT}
)
async def add_note(incident_id: IncidentId, body: NoteIn, ctx: Ctx, who: Responder) -> TimelineOut:
    async def work(session: AsyncSession) -> TimelineEntry:
        await ctx.incidents.hold_open(session, incident_id)
        entry = await ctx.incidents.add_note(session, incident_id, actor=who.name, text=body.text)
        await ctx.audit(session, who, "incident.note", incident_id, incident_id=incident_id,
                        details={"seq": entry.seq})  # fmt: skip
        return entry

    return TimelineOut.of(await ctx.write(work))


@router.post(
    "/{incident_id}/participants",
    response_model=ParticipantOut,
    status_code=201,
    responses={**NOT_FOUND, **CONFLICT},
)
async def add_participant(
    incident_id: IncidentId, body: ParticipantIn, ctx: Ctx, who: Responder
) -> ParticipantOut:
    async def work(session: AsyncSession) -> Participant:
        await ctx.incidents.hold_open(session, incident_id)
        row = await ctx.incidents.add_participant(
            session, incident_id, name=body.name, role=body.role, actor=who.name
        )
        await ctx.audit(session, who, "incident.participant", incident_id, incident_id=incident_id,
                        details=body.model_dump(mode="json"))  # fmt: skip
        return row

    return ParticipantOut.of(await ctx.write(work))


@router.post(
    "/{incident_id}/tasks", response_model=TaskOut, status_code=201, responses={**NOT_FOUND, **CONFLICT}
)
async def add_task(incident_id: IncidentId, body: TaskIn, ctx: Ctx, who: Responder) -> TaskOut:
    async def work(session: AsyncSession) -> Task:
        await ctx.incidents.hold_open(session, incident_id)
        task = await ctx.incidents.add_task(
            session, incident_id, title=body.title, actor=who.name, due_at=body.due_at,
            assignee=body.assignee,
        )  # fmt: skip
        await ctx.audit(session, who, "incident.task", incident_id, incident_id=incident_id,
                        details={"task": task.id, "title": body.title})  # fmt: skip
        return task

    return TaskOut.of(await ctx.write(work))


@router.post(
    "/{incident_id}/tasks/{task_id}/status", response_model=TaskOut, responses={**NOT_FOUND, **CONFLICT}
)
async def set_task_status(
    incident_id: IncidentId,
    task_id: Annotated[int, Field(ge=1, le=INT32_MAX)],
    body: TaskStatusIn,
    ctx: Ctx,
    who: Responder,
) -> TaskOut:
    async def work(session: AsyncSession) -> Task:
        await ctx.incidents.hold_open(session, incident_id)
        tasks = {t.id for t in await ctx.incidents.tasks(session, incident_id)}
        if task_id not in tasks:  # a task id of another incident is "not found" here
            raise IncidentNotFound(str(task_id), "task")
        task = await ctx.incidents.set_task_status(session, task_id, body.status, actor=who.name)
        await ctx.audit(session, who, "incident.task_status", incident_id, incident_id=incident_id,
                        details={"task": task_id, "status": body.status.value})  # fmt: skip
        return task

    return TaskOut.of(await ctx.write(work))

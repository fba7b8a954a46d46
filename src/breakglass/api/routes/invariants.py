"""``GET /api/v1/invariants``: the protocol's invariant health, for the dashboard's first glance (viewer).

For each invariant and flow monitor in the configuration: ``violated`` while an open incident holds a
finding of it, else ``ok`` (or ``disabled``), with its last violation; and the last block the
follower processed, so a silent detector is told apart from a healthy protocol.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import func, select

from breakglass.api.access import GuardedRoute, Viewer
from breakglass.api.context import ApiContext, Ctx
from breakglass.chain.checkpoint import CheckpointStore
from breakglass.incidents.models import Incident, IncidentFinding, IncidentState

__all__ = ["ChainHead", "InvariantHealth", "InvariantOut", "invariant_health", "router"]

router = APIRouter(prefix="/api/v1", tags=["invariants"], route_class=GuardedRoute)

_KINDS = ("invariant", "flow")


class InvariantOut(BaseModel):
    monitor_id: str
    kind: str
    title: str
    severity: str
    status: str
    """``ok``, ``violated`` or ``disabled``."""
    open_incidents: list[str]
    last_violation_block: int | None
    last_violation_at: int | None
    chain_id: int | None = None
    """The chain it watches (the configured id; None when it is only the node's)."""


class ChainHead(BaseModel):
    """One chain of several: the newest block its follower processed."""

    name: str
    chain_id: int
    last_block: int | None


class InvariantHealth(BaseModel):
    chain_id: int | None
    last_block: int | None
    """The newest block the follower processed (None before the first)."""
    invariants: list[InvariantOut]
    chains: list[ChainHead] = []
    """With several chains (``chains:``), each one's last block (``chain_id``, ``last_block``: None)."""


def chain_id_of(ctx: ApiContext) -> int | None:
    return ctx.app.config.chain_id


async def invariant_health(ctx: ApiContext) -> InvariantHealth:
    views = ctx.app.config.per_chain()  # several chains: each monitor on its own chain
    monitors = [(m, v.chain_id) for v in views for m in v.settings.monitors if m.kind in _KINDS]
    ids = [m.id for m, _chain in monitors]
    last_seen = (
        select(IncidentFinding.monitor_id, func.max(IncidentFinding.block_number),
               func.max(IncidentFinding.attached_at))
        .where(IncidentFinding.monitor_id.in_(ids))
        .group_by(IncidentFinding.monitor_id)
    )  # fmt: skip
    open_by = (
        select(IncidentFinding.monitor_id, Incident.id)
        .join(Incident, Incident.id == IncidentFinding.incident_id)
        .where(IncidentFinding.monitor_id.in_(ids), Incident.state != IncidentState.CLOSED.value)
        .distinct()
    )
    async with ctx.reading() as session:
        last = {row[0]: (row[1], row[2]) for row in (await session.execute(last_seen)).all()}
        open_incidents: dict[str, list[str]] = {}
        for monitor_id, incident_id in (await session.execute(open_by)).all():
            open_incidents.setdefault(monitor_id, []).append(incident_id)
    chain_id = chain_id_of(ctx)
    checkpoint = await CheckpointStore(ctx.sessions).last(chain_id) if chain_id is not None else None
    heads = []
    for view in views if len(views) > 1 else []:
        assert view.chain_id is not None  # required in 'chains'
        last_of = await CheckpointStore(ctx.sessions).last(view.chain_id)
        heads.append(ChainHead(name=view.settings.chain.name, chain_id=view.chain_id,
                               last_block=last_of.number if last_of else None))  # fmt: skip
    out = []
    for m, watched in monitors:
        incidents = sorted(open_incidents.get(m.id, []))
        status = "disabled" if not m.enabled else ("violated" if incidents else "ok")
        block, at = last.get(m.id, (None, None))
        out.append(InvariantOut(monitor_id=m.id, kind=m.kind, title=m.title or m.id, severity=m.severity,
                                status=status, open_incidents=incidents, last_violation_block=block,
                                last_violation_at=at, chain_id=watched))  # fmt: skip
    return InvariantHealth(
        chain_id=chain_id, last_block=checkpoint.number if checkpoint else None, invariants=out, chains=heads
    )


@router.get("/invariants", response_model=InvariantHealth)
async def invariants(ctx: Ctx, _who: Viewer) -> InvariantHealth:
    return await invariant_health(ctx)

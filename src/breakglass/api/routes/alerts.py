"""``/api/v1/alerts``: deduplicated findings, newest first (viewer). Alerts change only through the
pipeline (dedup, silences, retractions); the API reads them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select

from breakglass.alerts.models import AlertRow, AlertStatus
from breakglass.api.access import GuardedRoute, Viewer
from breakglass.api.context import Ctx
from breakglass.api.schemas import NO_NUL, severity_name

__all__ = ["AlertOut", "router"]

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"], route_class=GuardedRoute)


class AlertOut(BaseModel):
    id: int
    fingerprint: str
    monitor_id: str
    severity: str
    title: str
    chain_id: int
    block_number: int
    block_hash: str | None
    tx_hash: str | None
    stage: str
    labels: dict[str, str]
    evidence: dict[str, Any]
    status: str
    muted_by: str | None
    incident_id: str | None
    first_seen_at: int
    last_seen_at: int
    count: int

    @classmethod
    def of(cls, row: AlertRow) -> AlertOut:
        fields = {name: getattr(row, name) for name in cls.model_fields if name != "severity"}
        return cls(severity=severity_name(row.severity), **fields)


@router.get("", response_model=list[AlertOut])
async def list_alerts(
    ctx: Ctx,
    _who: Viewer,
    status: Annotated[list[AlertStatus] | None, Query()] = None,
    incident_id: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    monitor_id: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[AlertOut]:
    query = select(AlertRow)
    if status:
        query = query.where(AlertRow.status.in_([s.value for s in status]))
    if incident_id is not None:
        query = query.where(AlertRow.incident_id == incident_id)
    if monitor_id is not None:
        query = query.where(AlertRow.monitor_id == monitor_id)
    query = query.order_by(AlertRow.last_seen_at.desc(), AlertRow.id.desc()).limit(limit).offset(offset)
    async with ctx.reading() as session:
        rows = (await session.scalars(query)).all()
    return [AlertOut.of(row) for row in rows]

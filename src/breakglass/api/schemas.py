"""Response shapes shared by several routers, and the error answers they document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from breakglass.domain import Severity
from breakglass.incidents.timeline import TimelineEntry

__all__ = ["NOT_FOUND", "TimelineOut", "severity_name"]

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such item"}}


def severity_name(value: int) -> str:
    try:
        return str(Severity(value))
    except ValueError:
        return str(value)


class TimelineOut(BaseModel):
    """One timeline event. ``hash`` chains it to the one before (``breakglass audit verify``)."""

    seq: int
    incident_id: str | None
    kind: str
    actor: str
    at: int
    data: dict[str, Any]
    hash: str

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineOut:
        return cls(seq=entry.seq, incident_id=entry.incident_id, kind=entry.kind.value,
                   actor=entry.actor, at=entry.at, data=dict(entry.data), hash=entry.hash)  # fmt: skip

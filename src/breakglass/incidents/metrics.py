"""Incident metrics: time to detect, contain and recover, in milliseconds and in blocks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from breakglass.incidents.models import Incident

__all__ = ["IncidentMetrics", "format_duration", "format_time", "incident_metrics"]


@dataclass(frozen=True, slots=True)
class IncidentMetrics:
    """None where the incident has not reached that point, or its evidence does not say."""

    ttd_ms: int | None
    ttc_ms: int | None
    ttr_ms: int | None
    ttd_blocks: int | None
    ttc_blocks: int | None


def _diff(end: int | None, start: int | None) -> int | None:
    return None if end is None or start is None else end - start


def incident_metrics(incident: Incident) -> IncidentMetrics:
    """TTD from the attack's onset to detection; TTC and TTR from detection."""
    return IncidentMetrics(
        ttd_ms=_diff(incident.detected_at, incident.onset_at),
        ttc_ms=_diff(incident.contained_at, incident.detected_at),
        ttr_ms=_diff(incident.recovered_at, incident.detected_at),
        ttd_blocks=_diff(incident.detected_block, incident.first_block),
        ttc_blocks=_diff(incident.contained_block, incident.detected_block),
    )


def format_time(ms: int | None) -> str:
    """Epoch milliseconds as ``YYYY-MM-DD HH:MM:SS.mmm UTC``; a dash for None."""
    if ms is None:
        return "—"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def format_duration(ms: int | None) -> str:
    if ms is None:
        return "—"
    return f"{ms / 1000:.3f} s" if ms < 120_000 else f"{ms / 60_000:.1f} min"

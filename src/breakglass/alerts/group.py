"""Grouping: alerts with equal values of the ``group_by`` labels, close enough in time, form one
incident (by default: same protocol and monitor group, within ``group_window`` of the last alert).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from breakglass.alerts.stage import AlertContext, Candidate
from breakglass.domain import Severity, fingerprint_of
from breakglass.incidents.service import IncidentService

__all__ = ["GroupStage", "group_of"]


def group_of(labels: Mapping[str, str], group_by: Sequence[str]) -> tuple[str, dict[str, str]]:
    """The group key (a stable hash) and the grouping labels' values."""
    values = {name: labels.get(name, "") for name in group_by}
    return fingerprint_of("group", values), values


class GroupStage:
    name = "group"

    def __init__(
        self,
        incidents: IncidentService,
        *,
        group_by: Sequence[str],
        window_ms: int,
        min_severity: Severity = Severity.LOW,
    ) -> None:
        self.incidents = incidents
        self.group_by = tuple(group_by)
        self.window_ms = window_ms
        self.min_severity = min_severity

    async def __call__(self, ctx: AlertContext, alerts: list[Candidate]) -> list[Candidate]:
        """Alerts below ``min_severity`` stay alerts only and stop here."""
        grouped: list[Candidate] = []
        for candidate in alerts:
            finding = candidate.finding
            if finding.severity < self.min_severity:
                continue
            key, values = group_of(candidate.labels, self.group_by)
            attached = await self.incidents.attach_finding(
                ctx.session, finding, group_key=key, group_labels=values, window_ms=self.window_ms
            )
            candidate.incident = attached.incident
            candidate.new_incident, candidate.escalated = attached.created, attached.escalated
            if candidate.alert is not None:
                candidate.alert.incident_id = attached.incident.id
            known = list(attached.incident.receivers or [])
            if any(r not in known for r in candidate.receivers):
                attached.incident.receivers = known + [r for r in candidate.receivers if r not in known]
            grouped.append(candidate)
        return grouped

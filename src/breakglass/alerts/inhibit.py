"""Inhibition: an active source alert mutes target alerts that share the ``equal`` labels.

The example it exists for: once a venue-paused alert fires, the liquidation and price alerts that a
paused venue causes are noise. A source is active while its incident is open, or, outside an
incident, for the rule's ``duration`` after it was last seen. Retracted sources inhibit nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select

from breakglass.alerts.models import AlertRow, AlertStatus
from breakglass.alerts.stage import AlertContext, Candidate
from breakglass.config.alerting import InhibitRuleConfig
from breakglass.domain import Severity
from breakglass.incidents.models import Incident, IncidentState
from breakglass.matchers import Matcher, matches_all, parse_matchers

__all__ = ["InhibitRule", "Inhibitor", "row_labels"]


def row_labels(row: AlertRow) -> dict[str, str]:
    """The matchable labels of a stored alert (as ``stage.matchable_labels`` of its finding)."""
    labels = dict(row.labels)
    labels.update(monitor=row.monitor_id, severity=str(Severity(row.severity)), stage=row.stage,
                  chain_id=str(row.chain_id))  # fmt: skip
    return labels


@dataclass(frozen=True, slots=True)
class InhibitRule:
    name: str
    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...]
    duration_ms: int

    @classmethod
    def of(cls, config: InhibitRuleConfig) -> InhibitRule:
        return cls(config.name, parse_matchers(config.source), parse_matchers(config.target),
                   tuple(config.equal), int(config.duration * 1000))  # fmt: skip


class Inhibitor:
    def __init__(self, rules: Sequence[InhibitRule]) -> None:
        self.rules = tuple(rules)

    async def mutes(self, ctx: AlertContext, candidate: Candidate) -> str | None:
        for rule in self.rules:
            if not matches_all(rule.target, candidate.labels):
                continue
            open_states = [s.value for s in IncidentState if s is not IncidentState.CLOSED]
            query = (
                select(AlertRow)
                .outerjoin(Incident, Incident.id == AlertRow.incident_id)
                .where(AlertRow.status != AlertStatus.RETRACTED.value)
                .where(AlertRow.fingerprint != candidate.finding.fingerprint)
                .where(
                    or_(
                        Incident.state.in_(open_states),
                        AlertRow.last_seen_at >= ctx.now_ms - rule.duration_ms,
                    )
                )
            )
            monitors = {m.value for m in rule.source if m.name == "monitor" and m.op == "="}
            if monitors:  # the usual case (``monitor=venue-paused``): let the database narrow it
                query = query.where(AlertRow.monitor_id.in_(monitors))
            for source in (await ctx.session.scalars(query)).all():
                labels = row_labels(source)
                if matches_all(rule.source, labels) and all(
                    labels.get(name, "") == candidate.labels.get(name, "") for name in rule.equal
                ):
                    return f"inhibit:{rule.name}"
        return None

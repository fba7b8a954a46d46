"""The stage interface of the alert pipeline: every stage takes and returns a list of candidates.

Like Alertmanager's ``notify.Stage``: a stage may drop candidates (a duplicate, a muted alert) or
annotate them (its alert row, receivers, incident); ``MultiStage`` runs stages in order and stops
when nothing is left. The stages share the caller's session and never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from breakglass.alerts.models import AlertRow
from breakglass.domain import Finding
from breakglass.incidents.models import Incident

__all__ = ["PSEUDO_LABELS", "AlertContext", "Candidate", "MultiStage", "Stage", "matchable_labels"]

PSEUDO_LABELS = ("monitor", "severity", "stage", "chain_id")


def matchable_labels(finding: Finding) -> dict[str, str]:
    """What matchers see: the finding's labels plus monitor, severity, stage and chain_id."""
    labels = dict(finding.labels)
    labels.update(
        monitor=finding.monitor_id,
        severity=str(finding.severity),
        stage=finding.stage.value,
        chain_id=str(finding.chain_id),
    )
    return labels


@dataclass
class Candidate:
    """A finding on its way through the pipeline, annotated by the stages it passed."""

    finding: Finding
    labels: dict[str, str]
    alert: AlertRow | None = None
    receivers: tuple[str, ...] = ()
    incident: Incident | None = None
    new_incident: bool = False
    escalated: bool = False

    @property
    def stored_labels(self) -> dict[str, str]:
        """The labels an alert row keeps: the finding's, over the defaults (e.g. ``protocol``)."""
        return {k: v for k, v in self.labels.items() if k not in PSEUDO_LABELS}

    @classmethod
    def of(cls, finding: Finding, defaults: dict[str, str] | None = None) -> Candidate:
        labels = dict(defaults or {})
        labels.update(matchable_labels(finding))
        return cls(finding, labels)


@dataclass
class AlertContext:
    session: AsyncSession
    now_ms: int
    passed: list[Candidate] = field(default_factory=list)
    """Candidates that came out of the last stage (for the caller's notifications and metrics)."""


class Stage(Protocol):
    name: str

    async def __call__(self, ctx: AlertContext, alerts: list[Candidate]) -> list[Candidate]: ...


class MultiStage:
    """Runs ``stages`` in order; each gets what the previous one let through."""

    name = "pipeline"

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = tuple(stages)

    async def __call__(self, ctx: AlertContext, alerts: list[Candidate]) -> list[Candidate]:
        for stage in self.stages:
            if not alerts:
                break
            alerts = await stage(ctx, alerts)
        ctx.passed = alerts
        return alerts

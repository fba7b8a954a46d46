"""The alert pipeline, assembled in one visible place: dedup -> tombstone -> mute -> route -> group.

Read ``build_pipeline`` to know what happens to a finding; each stage is one small module.
"""

from __future__ import annotations

from breakglass.alerts.dedup import DedupStage
from breakglass.alerts.group import GroupStage
from breakglass.alerts.inhibit import Inhibitor, InhibitRule
from breakglass.alerts.mute import MultiMuter, MuteStage
from breakglass.alerts.route import Router, RouteStage
from breakglass.alerts.silence import Silencer
from breakglass.alerts.stage import MultiStage
from breakglass.alerts.tombstones import TombstoneStage
from breakglass.config.alerting import AlertingConfig
from breakglass.domain import Severity
from breakglass.incidents.service import IncidentService

__all__ = ["build_pipeline"]


def build_pipeline(config: AlertingConfig, incidents: IncidentService) -> MultiStage:
    inhibitor = Inhibitor([InhibitRule.of(rule) for rule in config.inhibit_rules])
    return MultiStage(
        [
            DedupStage(),  # a fingerprint seen before: count it, stop
            TombstoneStage(),  # retracted before it came (its retraction handled first): mark, stop
            MuteStage(MultiMuter([Silencer(), inhibitor])),  # silenced or inhibited: mark, stop
            RouteStage(Router.of(config)),  # which channels hear about it
            GroupStage(  # into the open incident of its group, or a new one
                incidents,
                group_by=config.group_by,
                window_ms=int(config.group_window * 1000),
                min_severity=Severity.parse(config.incident_min_severity),
            ),
        ]
    )

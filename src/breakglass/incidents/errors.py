"""Errors of the incident service (branches of ``breakglass.errors.BreakglassError``).

BreakglassError
└── IncidentError            an incident operation was refused
    ├── IncidentNotFound     no incident (or task) with that id (the API answers 404)
    └── InvalidTransition    the lifecycle does not allow that move (the API answers 409)
        └── IncidentClosed   a closed incident takes no change but a reopen (409)
"""

from __future__ import annotations

from breakglass.errors import BreakglassError

__all__ = ["IncidentClosed", "IncidentError", "IncidentNotFound", "InvalidTransition"]


class IncidentError(BreakglassError):
    recoverable = False


class IncidentNotFound(IncidentError):
    def __init__(self, incident_id: str, what: str = "incident") -> None:
        self.incident_id = incident_id
        super().__init__(f"no {what} {incident_id!r}")


class InvalidTransition(IncidentError):
    def __init__(self, incident_id: str, current: str, target: str, reason: str) -> None:
        self.incident_id = incident_id
        self.current = current
        self.target = target
        self.reason = reason
        super().__init__(f"incident {incident_id}: cannot move {current} -> {target}: {reason}")


class IncidentClosed(InvalidTransition):
    def __init__(self, incident_id: str) -> None:
        super().__init__(incident_id, "closed", "closed", "closed incidents take no change; reopen it first")

"""The incident lifecycle as data: which state may follow which, and what closing requires.

Moves only go forward (a step may be skipped: automatic containment can come before anyone triaged);
any open incident may be closed, with a resolution. A closed incident takes no change but a reopen,
which returns it to the state it was closed from. Pure logic, unit-tested without a database.
"""

from __future__ import annotations

from breakglass.incidents.errors import InvalidTransition
from breakglass.incidents.models import IncidentState, Resolution

__all__ = ["NEXT", "TIMESTAMP_FIELD", "check_reopen", "check_transition"]

S = IncidentState
NEXT: dict[IncidentState, frozenset[IncidentState]] = {
    S.DETECTED: frozenset({S.TRIAGED, S.CONTAINED, S.CLOSED}),
    S.TRIAGED: frozenset({S.CONTAINED, S.CLOSED}),
    S.CONTAINED: frozenset({S.ERADICATED, S.RECOVERED, S.CLOSED}),
    S.ERADICATED: frozenset({S.RECOVERED, S.CLOSED}),
    S.RECOVERED: frozenset({S.CLOSED}),
    S.CLOSED: frozenset(),
}

TIMESTAMP_FIELD: dict[IncidentState, str] = {
    S.DETECTED: "detected_at",
    S.TRIAGED: "triaged_at",
    S.CONTAINED: "contained_at",
    S.ERADICATED: "eradicated_at",
    S.RECOVERED: "recovered_at",
    S.CLOSED: "closed_at",
}


def check_transition(
    incident_id: str,
    current: IncidentState,
    target: IncidentState,
    resolution: Resolution | None,
    duplicate_of: str | None = None,
) -> None:
    """Raise ``InvalidTransition`` unless ``current -> target`` is allowed with this resolution."""
    if target not in NEXT[current]:
        allowed = ", ".join(sorted(s.value for s in NEXT[current])) or "none (closed)"
        raise InvalidTransition(incident_id, current, target, f"allowed from {current}: {allowed}")
    if target is S.CLOSED and resolution is None:
        accepted = ", ".join(r.value for r in Resolution)
        raise InvalidTransition(incident_id, current, target, f"closing needs a resolution ({accepted})")
    if target is not S.CLOSED and resolution is not None:
        raise InvalidTransition(incident_id, current, target, "a resolution is given when closing")
    if resolution is Resolution.DUPLICATE and not duplicate_of:
        raise InvalidTransition(incident_id, current, target, "a duplicate names its original")
    if duplicate_of is not None and resolution is not Resolution.DUPLICATE:
        raise InvalidTransition(incident_id, current, target, "duplicate_of goes with resolution duplicate")
    if duplicate_of == incident_id:
        raise InvalidTransition(incident_id, current, target, "an incident cannot duplicate itself")


def check_reopen(incident_id: str, current: IncidentState) -> None:
    """Raise ``InvalidTransition`` unless the incident is closed (only closed incidents reopen)."""
    if current is not S.CLOSED:
        raise InvalidTransition(incident_id, current, "reopened", "only a closed incident is reopened")

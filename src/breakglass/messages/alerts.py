"""The alert stage's bus message: ``AlertChange`` on ``Topics.ALERTS``.

No ``from __future__ import annotations`` here, as in ``messages.incidents``: the bus codec resolves
field types in its own namespace.
"""

from dataclasses import dataclass

from breakglass.bus.codec import register

__all__ = ["AlertChange"]


@register
@dataclass(frozen=True, slots=True)
class AlertChange:
    """Published on ``Topics.ALERTS`` after commit: an alert was created (active or muted) or retracted."""

    fingerprint: str
    status: str
    count: int
    incident_id: str | None = None

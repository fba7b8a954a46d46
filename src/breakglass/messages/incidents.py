"""The incident stage's bus messages: timeline entries and incident changes (``breakglass.messages``).

This module does not use ``from __future__ import annotations`` on purpose: the bus codec resolves
field types in its own namespace, and real (not string) annotations need no resolving.
"""

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from breakglass.bus.codec import register

__all__ = ["IncidentChange", "TimelineEntry", "TimelineKind"]


class TimelineKind(enum.StrEnum):
    FINDING = "finding"
    ALERT = "alert"
    ACTION = "action"
    TRANSACTION = "transaction"
    SIGNATURE = "signature"
    STATE_CHANGE = "state_change"
    NOTE = "note"
    PARTICIPANT = "participant"
    TASK = "task"
    NOTIFICATION = "notification"
    AUDIT = "audit"


@register
@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """A detached, immutable copy of a timeline row: what the bus and the API carry."""

    seq: int
    incident_id: str | None
    kind: TimelineKind
    actor: str
    at: int
    data: Mapping[str, Any]
    hash: str


@register
@dataclass(frozen=True, slots=True)
class IncidentChange:
    """Published on ``Topics.INCIDENTS`` after commit: which incident changed, and how.

    ``change`` is ``opened``, ``escalated`` (``value`` = new severity name), ``state`` (``value`` =
    new state) or ``updated`` (a new alert, note, task, participant or action).
    """

    incident_id: str
    change: str
    value: str | None = None

"""The stage-to-stage interface: named topics carrying domain objects, at-least-once, in order per topic.

Stages publish to a topic and subscribe with a durable name; each durable name gets every message
once (a queue group: several workers with the same durable name share the messages). The in-process
bus and the NATS JetStream bus implement this one Protocol, and the same tests run over both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

__all__ = ["Bus", "Topics"]


class Topics:
    """The topic names of the pipeline, in the order data flows."""

    BLOCKS = "blocks"
    PENDING = "pending"
    FINDINGS = "findings"
    RETRACTIONS = "retractions"
    ALERTS = "alerts"
    INCIDENTS = "incidents"
    ACTIONS = "actions"
    TIMELINE = "timeline"


class Bus(Protocol):
    async def publish(self, topic: str, message: Any) -> None:
        """Deliver ``message`` to every durable subscription of ``topic``."""
        ...

    def subscribe(self, topic: str, durable: str) -> AsyncIterator[Any]:
        """Messages of ``topic`` for the subscription ``durable``, from now on, in publish order."""
        ...

    async def close(self) -> None: ...

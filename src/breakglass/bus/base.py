"""The stage-to-stage interface: named topics carrying domain objects, in order per topic.

Two ways to read a topic:

- ``subscribe(topic, durable)``, for work: at least once. Each durable name gets every message once (a
  queue group: several workers with the same durable name share the messages), and JetStream keeps its
  place across restarts. The alert, incident and response stages read this way.
- ``listen(topic)``, for watching: at most once, fan-out. Every listener gets every message published
  while it listens, nothing is kept for it, and it leaves nothing behind once closed. A listener that
  cannot keep up loses messages rather than slowing publishers. Live views (the API's server-sent
  events) read this way: each API process sees everything, however many there are.

``settled(topic)`` is the hand-off a producer waits for before it records progress (the follower's
checkpoint): every message published on the topic so far is durable for its consumers — stored by the
server (JetStream), or, on the in-process bus, whose queues die with the process, handled by every
durable subscription.

The in-process bus and the NATS JetStream bus implement this one Protocol, and the same tests run over
both (``tests/bus/test_conformance.py``).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from typing import Any, Protocol

__all__ = ["DEDUP_MEMORY", "Bus", "Topics"]

DEDUP_MEMORY = 10_000
"""How many ``publish(..., dedup=...)`` names the in-process bus remembers."""


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
    async def publish(self, topic: str, message: Any, *, dedup: str | None = None) -> None:
        """Deliver ``message`` to every durable subscription and every listener of ``topic``.

        ``dedup`` names the message: one published again on ``topic`` under the same name within
        the bus's duplicate window (JetStream: the stream's, 2 minutes; in process: the last
        ``DEDUP_MEMORY`` names) is dropped. A work item redelivered after its worker died publishes
        its result again; named, the result travels once."""
        ...

    def subscribe(self, topic: str, durable: str) -> AsyncIterator[Any]:
        """Messages of ``topic`` for the subscription ``durable``, from now on, in publish order."""
        ...

    def settled(self, topic: str) -> Awaitable[None]:
        """Done once everything published on ``topic`` before this call is durable for its consumers
        (see the module docstring). The mark is taken at the call, not when awaited."""
        ...

    def listen(self, topic: str) -> AsyncGenerator[Any, None]:
        """Every message of ``topic`` published while listening, for this listener alone, in order.

        Listening starts at this call on the in-process bus, and at the first iteration on a bus
        across machines (once the server has the subscription). Close it (``aclose()``, or
        ``contextlib.aclosing``) or cancel its reader when done: that removes it from the bus.
        """
        ...

    async def close(self) -> None: ...

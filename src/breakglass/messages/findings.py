"""The detection stage's bus message besides ``domain.Finding``: ``Retraction`` on ``Topics.RETRACTIONS``.

No ``from __future__ import annotations`` here, as in ``messages.incidents``: the bus codec resolves
field types in its own namespace.
"""

from dataclasses import dataclass

from breakglass.bus.codec import register

__all__ = ["Retraction"]


@register  # it travels on Topics.RETRACTIONS: over JetStream only registered types do
@dataclass(frozen=True, slots=True)
class Retraction:
    """Findings of a block that left the canonical chain. Consumers mark them; they are not deleted."""

    chain_id: int
    block_number: int
    block_hash: str
    fingerprints: tuple[str, ...]
    reason: str = "reorg"

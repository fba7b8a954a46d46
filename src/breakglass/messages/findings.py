"""The detection stage's bus message besides ``domain.Finding``: ``Retraction`` on ``Topics.RETRACTIONS``.

No ``from __future__ import annotations`` here, as in ``messages.incidents``: the bus codec resolves
field types in its own namespace.
"""

from dataclasses import dataclass, field

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
    at_ms: float = field(default=0.0, compare=False)
    """When the engine made it, on the clock of findings' ``observed_at_ms`` (0: unknown, an older
    sender). A finding of the same block observed later comes from a handling of that block after
    the retraction: the block is canonical again (a flip-flop reorg; ``alerts/dedup.py``)."""

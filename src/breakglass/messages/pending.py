"""The simulate work queue's messages: ``PendingWork`` in (one pending transaction to judge) and
``PendingVerdict`` out (what a worker made of it).

The mempool watcher (the ``detect`` role) submits one ``PendingWork`` per new pending transaction to
the work queue (``bus/workqueue.py``); one of the ``simulate`` workers takes it, simulates it on the
latest state and judges the post-state; findings go on ``Topics.FINDINGS`` (``stage=pending``,
``tx_hash`` = the pending transaction's hash) for the responder, and a ``PendingVerdict`` on the
queue's verdict subject for whoever watches (metrics, tests, the benchmark).

No ``from __future__ import annotations`` here, as in ``messages.incidents``: the bus codec resolves
field types in its own namespace.
"""

from dataclasses import dataclass

from breakglass.bus.codec import register
from breakglass.domain import Tx

__all__ = ["PendingVerdict", "PendingWork"]


@register
@dataclass(frozen=True, slots=True)
class PendingWork:
    """One pending transaction for a simulate worker: everything the judge needs, nothing process-local."""

    tx: Tx
    """the transaction as the watcher decoded it (sender, target, calldata, nonce, gas and fees)"""
    seen_at: float
    """when the watcher first saw it, wall clock in ms since the epoch (``time.time() * 1000``): a
    monotonic reading means nothing on another machine"""
    head: int
    """the latest block number the watcher knew then (-1: none yet); a worker takes it as a head"""
    chain_id: int

    @property
    def key(self) -> str:
        """Its identity in the queue: the same transaction submitted twice within the queue's
        duplicate window (two watchers, a resubmission) is queued once."""
        return f"{self.chain_id}:{self.tx.hash}"


@register
@dataclass(frozen=True, slots=True)
class PendingVerdict:
    """What a worker made of one ``PendingWork``: published once per item it finished."""

    tx_hash: str
    relevance: str
    """``simulate.Relevance`` value: protocol, contract, creation, ignored, no-code, included"""
    findings: tuple[str, ...]
    """fingerprints of the findings it published on ``Topics.FINDINGS``"""
    latency_ms: float
    """from ``PendingWork.seen_at`` to this verdict (wall clocks of two processes: NTP's error applies)"""
    worker: str
    error: str | None = None

"""What retractions named, kept for a while, so that a retraction handled before its finding still
retracts it.

Findings and retractions come on two topics with two consumers, ordered only within each (each
retries on its own while the store is unavailable; on JetStream they are separate subjects). A
retraction handled first finds no alert to retract; without a record of it the finding that follows
would be a live alert (and a page) for a block that is no longer canonical.

``AlertService.retract`` records a ``Tombstone`` per block hash and per fingerprint it names, with the
retraction's ``at_ms`` (the engine's clock). ``TombstoneStage``, right after dedup, stores a new alert
whose finding a tombstone retracts as ``retracted``, as ``retract`` would have marked it, and stops it
there: it is not muted, routed, grouped into an incident or notified. A tombstone retracts a finding
observed at or before it was made (``observed_at_ms <= at_ms``), or of any time when either time is
unknown, the rule ``retract`` applies to stored alerts. A finding observed after it comes from a
handling of its block after the retraction: the block is canonical again (a flip-flop reorg), a live
alert as ever.

Tombstones are pruned after ``HORIZON_MS`` of the alert stage's clock, in the transaction that records
new ones: a finding is not that late behind its retraction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import and_, case, delete, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from breakglass.alerts.models import AlertStatus, Tombstone, TombstoneKind
from breakglass.alerts.stage import AlertContext, Candidate
from breakglass.logs import get_logger

__all__ = ["HORIZON_MS", "TombstoneStage", "record"]

log = get_logger(__name__)

HORIZON_MS = 24 * 3_600_000
"""How long a tombstone is kept after it was last recorded (the alert stage's clock)."""

_KEY_LENGTH = 66  # Tombstone.key; a longer key names no alert (fingerprint 64, block hash 66)
_FINGERPRINT, _BLOCK = TombstoneKind.FINGERPRINT.value, TombstoneKind.BLOCK.value


async def record(
    session: AsyncSession,
    *,
    fingerprints: Iterable[str],
    blocks: Iterable[str],
    at_ms: float | None,
    now_ms: int,
) -> None:
    """Record what a retraction made at ``at_ms`` (None: unknown) names, and prune old tombstones.

    A key recorded again keeps the newest time; an unknown time stays unknown (it retracts more)."""
    keys = {(_FINGERPRINT, k) for k in fingerprints if k and len(k) <= _KEY_LENGTH}
    keys |= {(_BLOCK, k) for k in blocks if k and len(k) <= _KEY_LENGTH}
    await session.execute(delete(Tombstone).where(Tombstone.recorded_at < now_ms - HORIZON_MS))
    if not keys:
        return
    dialect = (await session.connection()).dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    rows = [{"kind": kind, "key": key, "at_ms": at_ms, "recorded_at": now_ms} for kind, key in sorted(keys)]
    statement = insert(Tombstone).values(rows)
    new = statement.excluded
    newest = case(
        (or_(Tombstone.at_ms.is_(None), new.at_ms.is_(None)), None),
        (new.at_ms > Tombstone.at_ms, new.at_ms),
        else_=Tombstone.at_ms,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Tombstone.kind, Tombstone.key],
            set_={"at_ms": newest, "recorded_at": new.recorded_at},
        )
    )


class TombstoneStage:
    """New alerts a recorded retraction retracts: stored ``retracted``, and they stop here."""

    name = "tombstone"

    async def __call__(self, ctx: AlertContext, alerts: list[Candidate]) -> list[Candidate]:
        fingerprints = {c.finding.fingerprint for c in alerts}
        blocks = {c.finding.block_hash for c in alerts if c.finding.block_hash}
        query = select(Tombstone).where(
            or_(
                and_(Tombstone.kind == _FINGERPRINT, Tombstone.key.in_(fingerprints)),
                and_(Tombstone.kind == _BLOCK, Tombstone.key.in_(blocks)),
            )
        )
        found = {(t.kind, t.key): t.at_ms for t in (await ctx.session.scalars(query)).all()}
        if not found:
            return alerts
        passed: list[Candidate] = []
        for candidate in alerts:
            f, row = candidate.finding, candidate.alert
            observed = f.observed_at_ms or None
            keys = ((_FINGERPRINT, f.fingerprint), (_BLOCK, f.block_hash))
            made = [found[key] for key in keys if key in found]
            # made after it was observed (or either time unknown), as ``AlertService.retract`` decides
            made = [m for m in made if m is None or observed is None or observed <= m]
            if not made or row is None:
                passed.append(candidate)
                continue
            row.status, row.retracted_at = AlertStatus.RETRACTED.value, ctx.now_ms
            row.retraction_at_ms = None if None in made else max(m for m in made if m is not None)
            log.info(
                "alerts.retracted_before_raised", fingerprint=f.fingerprint, block=f.block_number,
                block_hash=f.block_hash, observed_at_ms=observed, retraction_at_ms=row.retraction_at_ms,
            )  # fmt: skip
        return passed

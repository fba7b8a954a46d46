"""Fingerprint deduplication: the first finding of a fingerprint becomes an alert; repeats only
bump its count and last-seen time and stop here (Alertmanager's dedup against its log).

After a reorg the new branch often raises the very fingerprint the orphaned block did (a monitor
keyed by block number, a transaction mined again): that is a new alert, not a repeat of the retracted
one. The retracted row (and its incident link) is renamed ``<fingerprint>~<orphaned block hash>`` and
kept as the record of what was retracted; the new-branch finding goes through the whole pipeline
(muting, routing, grouping into the incident, a timeline entry) as a live alert.

The same goes for a retracted alert raised again from its own block, when that block is canonical
again (a flip-flop reorg: the chain goes A -> B -> A between two branches, same hashes). The signal is
the detection engine's clock: a finding's ``observed_at_ms`` is when the engine evaluated the block,
and ``Retraction.at_ms`` when it retracted it. The engine evaluates a block again only when it handles
it again, i.e. when the node has it on the chain: a finding observed after the retraction that
retracted its alert is canonical again. A redelivery of the first raise (the bus is at least once)
carries the first raise's time, older than the retraction: a repeat, the alert stays retracted.
Arrival order says nothing here: findings and retractions come on two topics, ordered only within each.
"""

from __future__ import annotations

import json

from sqlalchemy import select, update

from breakglass.alerts.models import AlertRow, AlertStatus
from breakglass.alerts.stage import AlertContext, Candidate
from breakglass.domain import Finding
from breakglass.incidents.models import IncidentFinding
from breakglass.logs import get_logger
from breakglass.timeline import canonical_json

__all__ = ["DedupStage"]

log = get_logger(__name__)


class DedupStage:
    name = "dedup"

    async def __call__(self, ctx: AlertContext, alerts: list[Candidate]) -> list[Candidate]:
        fresh: list[Candidate] = []
        for candidate in alerts:
            f = candidate.finding
            observed = f.observed_at_ms or None
            query = select(AlertRow).where(AlertRow.fingerprint == f.fingerprint)
            row = (await ctx.session.scalars(query)).first()
            if row is not None and (_new_branch(row, f.block_hash) or _canonical_again(row, f)):
                await _set_aside(ctx, row)
                row = None
            if row is not None:
                row.count += 1
                row.last_seen_at = ctx.now_ms
                if observed and observed > (row.observed_at_ms or 0):
                    row.observed_at_ms = observed
                continue
            row = AlertRow(
                fingerprint=f.fingerprint, monitor_id=f.monitor_id, severity=int(f.severity),
                title=f.title, chain_id=f.chain_id, block_number=f.block_number,
                block_hash=f.block_hash, tx_hash=f.tx_hash, stage=f.stage.value,
                labels=candidate.stored_labels, evidence=_jsonable(dict(f.evidence)),
                status=AlertStatus.ACTIVE.value, first_seen_at=ctx.now_ms,
                last_seen_at=ctx.now_ms, count=1, observed_at_ms=observed,
            )  # fmt: skip
            ctx.session.add(row)
            await ctx.session.flush()
            candidate.alert = row
            fresh.append(candidate)
        return fresh


def _new_branch(row: AlertRow, block_hash: str | None) -> bool:
    """A retracted alert's fingerprint raised again from another block: the reorg's new branch."""
    return (
        row.status == AlertStatus.RETRACTED.value and block_hash is not None and block_hash != row.block_hash
    )


def _canonical_again(row: AlertRow, f: Finding) -> bool:
    """A retracted alert's finding raised again from the same block, observed by the engine after
    it retracted that block: the block is canonical again. Unknown times (0, None): a repeat."""
    return (
        row.status == AlertStatus.RETRACTED.value
        and f.block_hash is not None
        and f.block_hash == row.block_hash
        and row.retraction_at_ms is not None
        and f.observed_at_ms > row.retraction_at_ms
    )


async def _set_aside(ctx: AlertContext, row: AlertRow) -> None:
    """Rename a retracted alert and its incident link so that its fingerprint is free again.

    The name is ``<fingerprint>~<orphaned block hash>``, or ``...~<row id>`` when an earlier alert of
    that same block already has it: in a flip-flop reorg (A -> B -> A -> B) a block's alert can be
    retracted, raised again and retracted again, and the name is unique."""
    old = row.fingerprint
    name = f"{old}~{(row.block_hash or '')[2:14] or row.id}"
    taken = await ctx.session.scalar(select(AlertRow.id).where(AlertRow.fingerprint == name).limit(1))
    if taken is not None:
        name = f"{name}~{row.id}"  # the row's own id: no other row is ever renamed to it
    row.fingerprint = name
    await ctx.session.execute(
        update(IncidentFinding).where(IncidentFinding.fingerprint == old).values(fingerprint=row.fingerprint)
    )
    await ctx.session.flush()
    log.info("alerts.new_branch", fingerprint=old, orphaned_block=row.block_hash, block=row.block_number)


def _jsonable(evidence: dict[str, object]) -> dict[str, object]:
    # Evidence may carry bytes or enums; store the same canonical form the timeline hashes.
    loaded: dict[str, object] = json.loads(canonical_json(evidence))
    return loaded

"""Fingerprint deduplication: the first finding of a fingerprint becomes an alert; repeats only
bump its count and last-seen time and stop here (Alertmanager's dedup against its log)."""

from __future__ import annotations

import json

from sqlalchemy import select

from breakglass.alerts.models import AlertRow, AlertStatus
from breakglass.alerts.stage import AlertContext, Candidate
from breakglass.incidents.timeline import canonical_json

__all__ = ["DedupStage"]


class DedupStage:
    name = "dedup"

    async def __call__(self, ctx: AlertContext, alerts: list[Candidate]) -> list[Candidate]:
        fresh: list[Candidate] = []
        for candidate in alerts:
            f = candidate.finding
            query = select(AlertRow).where(AlertRow.fingerprint == f.fingerprint)
            row = (await ctx.session.scalars(query)).first()
            if row is not None:
                row.count += 1
                row.last_seen_at = ctx.now_ms
                continue
            row = AlertRow(
                fingerprint=f.fingerprint, monitor_id=f.monitor_id, severity=int(f.severity),
                title=f.title, chain_id=f.chain_id, block_number=f.block_number,
                block_hash=f.block_hash, tx_hash=f.tx_hash, stage=f.stage.value,
                labels=candidate.stored_labels, evidence=_jsonable(dict(f.evidence)),
                status=AlertStatus.ACTIVE.value, first_seen_at=ctx.now_ms,
                last_seen_at=ctx.now_ms, count=1,
            )  # fmt: skip
            ctx.session.add(row)
            await ctx.session.flush()
            candidate.alert = row
            fresh.append(candidate)
        return fresh


def _jsonable(evidence: dict[str, object]) -> dict[str, object]:
    # Evidence may carry bytes or enums; store the same canonical form the timeline hashes.
    loaded: dict[str, object] = json.loads(canonical_json(evidence))
    return loaded

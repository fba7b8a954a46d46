"""``/api/v1/actions``: what the response engine did and is doing, from its append-only ledger (viewer).

Actions are started by playbooks, not by API callers: the only human step in an action is a Safe
signature (``/api/v1/safe``). Each action is summarised by its idempotency key; its steps are the
ledger rows, oldest first.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel

from breakglass.api.access import GuardedRoute, Viewer
from breakglass.api.context import Ctx
from breakglass.api.schemas import NO_NUL, NOT_FOUND
from breakglass.messages.actions import ActionStep
from breakglass.respond.ledger import LedgerRow

__all__ = ["ActionOut", "StepOut", "router", "summarise"]

router = APIRouter(prefix="/api/v1/actions", tags=["actions"], route_class=GuardedRoute)

FINAL_STEPS = frozenset(
    {ActionStep.CONFIRMED, ActionStep.FAILED, ActionStep.REFUSED, ActionStep.DUPLICATE,
     ActionStep.EXECUTED, ActionStep.RATIFIED, ActionStep.LAPSED, ActionStep.NOTIFY,
     ActionStep.ESCALATE, ActionStep.SATISFIED}
)  # fmt: skip
"""Steps after which nothing more is expected of an action; anything else is still pending."""


class StepOut(BaseModel):
    step: str
    at_ms: float
    tx_hash: str | None
    nonce: int | None
    detail: dict[str, Any]

    @classmethod
    def of(cls, row: LedgerRow) -> StepOut:
        # raw_tx is left out: public once broadcast, but long, and nothing a reader needs here.
        return cls(step=row.step, at_ms=row.at_ms, tx_hash=row.tx_hash, nonce=row.nonce,
                   detail=dict(row.detail or {}))  # fmt: skip


class ActionOut(BaseModel):
    key: str
    playbook: str
    action: str
    target: str
    monitor_id: str
    fingerprint: str
    state: str
    """The last step."""
    pending: bool
    tx_hash: str | None
    started_at_ms: float
    updated_at_ms: float
    steps: list[StepOut]
    chain_id: int | None = None
    """The chain it acts on (None: an action recorded before chains were named)."""


def summarise(rows: list[LedgerRow]) -> list[ActionOut]:
    """Ledger rows (oldest first) grouped by action key, most recently updated first."""
    by_key: dict[str, list[LedgerRow]] = {}
    for row in rows:
        by_key.setdefault(row.key, []).append(row)
    out = []
    for key, steps in by_key.items():
        first, last = steps[0], steps[-1]
        tx = next((r.tx_hash for r in reversed(steps) if r.tx_hash), None)
        out.append(ActionOut(
            key=key, playbook=first.playbook, action=first.action, target=first.target,
            monitor_id=first.monitor_id, fingerprint=first.fingerprint, state=last.step,
            pending=ActionStep(last.step) not in FINAL_STEPS, tx_hash=tx,
            started_at_ms=first.at_ms, updated_at_ms=last.at_ms, steps=[StepOut.of(r) for r in steps],
            chain_id=next((r.chain_id for r in steps if r.chain_id is not None), None),
        ))  # fmt: skip
    return sorted(out, key=lambda a: a.updated_at_ms, reverse=True)


@router.get("", response_model=list[ActionOut])
async def list_actions(
    ctx: Ctx,
    _who: Viewer,
    pending: Annotated[bool, Query()] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ActionOut]:
    """Actions, most recently updated first; ``pending=true`` for those still under way."""
    actions = summarise(await ctx.ledger.rows())
    if pending:
        actions = [a for a in actions if a.pending]
    return actions[:limit]


@router.get("/{key:path}", response_model=ActionOut, responses=NOT_FOUND)
async def get_action(
    key: Annotated[str, Path(min_length=1, max_length=500, pattern=NO_NUL)], ctx: Ctx, _who: Viewer
) -> ActionOut:
    rows = await ctx.ledger.history(key) if len(key) <= 300 else []
    if not rows:
        raise HTTPException(404, f"no action {key!r}")
    return summarise(rows)[0]

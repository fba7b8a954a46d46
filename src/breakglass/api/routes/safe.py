"""``/api/v1/safe/proposals``: Safe transactions awaiting owners' signatures (viewer), and signature
submission (responder).

breakglass never holds an owner's key. An owner reviews what they sign (``GET .../{hash}``: the
decoded call, Safe, nonce, chain and the EIP-712 data), signs the Safe transaction hash with their own
wallet (``eth_sign`` style, v = 27/28), and submits the 65-byte signature here. The Safe service checks
that it recovers to a current owner, stores it, and executes the transaction once the threshold is met.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel, Field

from breakglass.api.access import GuardedRoute, Responder, Viewer
from breakglass.api.context import ApiContext, Ctx
from breakglass.api.schemas import NOT_FOUND, ApiInput
from breakglass.errors import ResponseError
from breakglass.respond.safe import SafeProposalRow

__all__ = ["ProposalOut", "SignatureIn", "SignatureOut", "router"]

router = APIRouter(prefix="/api/v1/safe/proposals", tags=["safe"], route_class=GuardedRoute)

SafeTxHash = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]
UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"description": "no Safe service (response engine not configured) or the chain is unreachable"}
}


class ProposalOut(BaseModel):
    safe_tx_hash: str
    safe: str
    safe_address: str
    chain_id: int
    safe_nonce: int
    to: str
    contract: str
    function: str
    target: str
    key: str
    created_at_ms: float
    executed_tx_hash: str | None

    @classmethod
    def of(cls, row: SafeProposalRow) -> ProposalOut:
        return cls(**{name: getattr(row, name) for name in cls.model_fields})


class SignatureIn(ApiInput):
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")
    """65 bytes r‖s‖v over the Safe transaction hash, v = 27 or 28."""


class SignatureOut(BaseModel):
    owner: str
    """The owner the signature recovers to."""
    signed_by: list[str]
    threshold: int
    executed_tx_hash: str | None
    """Set when this signature met the threshold and the execution was sent."""
    execution_error: str | None = None


@router.get("", response_model=list[ProposalOut], responses=UNAVAILABLE)
async def pending_proposals(ctx: Ctx, _who: Viewer) -> list[ProposalOut]:
    """Proposals not yet executed, in Safe nonce order."""
    return [ProposalOut.of(row) for row in await ctx.safes.pending()]


async def _known(ctx: ApiContext, safe_tx_hash: str) -> SafeProposalRow:
    async with ctx.reading() as session:
        row = await session.get(SafeProposalRow, safe_tx_hash.lower())
    if row is None:
        raise HTTPException(404, f"no Safe proposal {safe_tx_hash}")
    return row


@router.get("/{safe_tx_hash}", responses={**NOT_FOUND, **UNAVAILABLE})
async def describe_proposal(safe_tx_hash: SafeTxHash, ctx: Ctx, _who: Viewer) -> dict[str, Any]:
    """Everything an owner must check before signing, including the EIP-712 typed data."""
    safes = ctx.safes
    await _known(ctx, safe_tx_hash)
    return await safes.describe(safe_tx_hash)


@router.post(
    "/{safe_tx_hash}/signatures",
    response_model=SignatureOut,
    responses={**NOT_FOUND, **UNAVAILABLE, 422: {"description": "not an owner's valid signature"}},
)
async def submit_signature(
    safe_tx_hash: SafeTxHash, body: SignatureIn, ctx: Ctx, who: Responder
) -> SignatureOut:
    """Add an owner's signature; at the threshold the Safe transaction is executed. Audited."""
    safes = ctx.safes
    row = await _known(ctx, safe_tx_hash)
    owner = await safes.add_signature(safe_tx_hash, bytes.fromhex(body.signature[2:]))
    executed: str | None = None
    error: str | None = None
    try:
        event = await safes.execute_if_ready(safe_tx_hash)
        executed = event.tx_hash if event is not None else None
    except ResponseError as exc:  # the signature is stored either way; say why it was not sent
        error = str(exc)
    described = await safes.describe(safe_tx_hash)
    async with ctx.transaction() as session:
        fingerprint = row.fingerprint
        incident = await ctx.incidents.for_fingerprint(session, fingerprint) if fingerprint else None
        await ctx.audit(session, who, "safe.sign", safe_tx_hash,
                        incident_id=incident.id if incident else None,
                        details={"owner": owner, "executed_tx_hash": executed})  # fmt: skip
    return SignatureOut(owner=owner, signed_by=list(described["signed_by"]),
                        threshold=int(described["threshold"]),
                        executed_tx_hash=executed or described.get("executed_tx_hash"),
                        execution_error=error)  # fmt: skip

"""``/api/v1/tokens``: list and revoke API tokens (admin). Tokens are created with the CLI only, so a
token's clear text is printed once on a terminal and never travels in an HTTP response."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, overload

from fastapi import APIRouter, HTTPException, Path
from pydantic import BaseModel

from breakglass.api.access import Admin, GuardedRoute
from breakglass.api.auth import TokenError, TokenStore
from breakglass.api.context import Ctx
from breakglass.api.schemas import NO_NUL
from breakglass.store.tokens import ApiToken

__all__ = ["TokenOut", "router"]

TokenName = Annotated[str, Path(min_length=1, max_length=100, pattern=NO_NUL)]

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"], route_class=GuardedRoute)


class TokenOut(BaseModel):
    name: str
    role: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenOut:
        # SQLite hands timezone-aware columns back naive; they were stored in UTC. A date-time
        # without an offset is not an RFC 3339 date-time, which the spec promises.
        return cls(name=row.name, role=row.role, created_at=_utc(row.created_at),
                   last_used_at=_utc(row.last_used_at), revoked_at=_utc(row.revoked_at))  # fmt: skip


@overload
def _utc(value: datetime) -> datetime: ...
@overload
def _utc(value: None) -> None: ...
def _utc(value: datetime | None) -> datetime | None:
    return value if value is None or value.tzinfo else value.replace(tzinfo=UTC)


@router.get("", response_model=list[TokenOut])
async def list_tokens(ctx: Ctx, _who: Admin) -> list[TokenOut]:
    async with ctx.reading() as session:
        return [TokenOut.of(row) for row in await TokenStore(session).list()]


@router.post("/{name}/revoke", response_model=TokenOut, responses={404: {"description": "no such token"}})
async def revoke_token(name: TokenName, ctx: Ctx, who: Admin) -> TokenOut:
    """Revoke a token; its sessions end with it. Audited."""
    try:
        async with ctx.transaction() as session:
            row = await TokenStore(session).revoke(name)
            await ctx.audit(session, who, "token.revoke", f"token:{name}")
    except TokenError as exc:
        raise HTTPException(404, str(exc)) from exc
    return TokenOut.of(row)

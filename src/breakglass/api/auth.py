"""API tokens and roles: who a request is, and what that role may do.

Tokens are 256-bit random strings shown once at creation and stored only as SHA-256 digests: a stolen
database does not yield a usable token, and a high-entropy secret needs no slow password hash. A
presented token is found by its public ``lookup`` prefix and then compared to the digest with
``hmac.compare_digest``, so response time does not leak how much of a guess was right.

Roles are ordered: ``viewer`` reads; ``responder`` also acts on incidents, silences and signatures;
``admin`` also manages tokens. The dashboard trades a token for a signed session cookie
(:class:`SessionCodec`) carrying the token's id and a CSRF secret, and the token is re-checked on
every request so that revoking it ends its sessions too.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from breakglass.errors import BreakglassError
from breakglass.store.tokens import ApiToken

__all__ = [
    "TOKEN_PREFIX",
    "Principal",
    "Role",
    "SessionCodec",
    "SessionData",
    "TokenError",
    "TokenStore",
    "digest_of",
]

TOKEN_PREFIX = "bgt_"  # noqa: S105 (a public marker that makes leaked tokens greppable)
_LOOKUP_CHARS = 12
_TOUCH_EVERY = timedelta(minutes=5)  # last_used_at is for spotting stale tokens, not an access log


class TokenError(BreakglassError):
    """A token could not be created or revoked (duplicate name, unknown name)."""


class Role(enum.IntEnum):
    """Ordered, so ``principal.role >= Role.RESPONDER`` reads as it should."""

    PEER = 0
    """Another protocol's breakglass: reads the threat intelligence we share (``/taxii2/``), nothing else."""
    VIEWER = 1
    RESPONDER = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.upper()]
        except KeyError:
            accepted = ", ".join(r.name.lower() for r in cls)
            raise ValueError(f"unknown role {text!r} (accepted: {accepted})") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. ``via`` is ``token`` (Authorization header) or ``session`` (cookie);
    only session callers carry ``csrf``, because only cookies are sent by the browser on its own."""

    token_id: int
    name: str
    role: Role
    via: str
    csrf: str | None = None


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(value: datetime) -> datetime:
    # SQLite hands timezone-aware columns back naive; everything stored here is UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class TokenStore:
    """Create, verify, list and revoke API tokens. Takes a session and never commits."""

    def __init__(self, session: AsyncSession) -> None:
        self._session = session

    async def create(self, name: str, role: Role) -> tuple[ApiToken, str]:
        """A new token; returns the row and the clear token, which exists nowhere else afterwards."""
        name = name.strip()
        if not name or len(name) > 100:
            raise TokenError("a token name must be 1 to 100 characters")
        if await self.by_name(name) is not None:
            raise TokenError(f"a token named {name!r} already exists")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        row = ApiToken(
            name=name,
            role=str(role),
            lookup=token[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + _LOOKUP_CHARS],
            digest=digest_of(token),
            created_at=_now(),
        )
        self._session.add(row)
        await self._session.flush()
        return row, token

    async def verify(self, token: str) -> Principal | None:
        """The principal for a presented token, or None for anything unknown, malformed or revoked."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        lookup = token[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + _LOOKUP_CHARS]
        row = await self._session.scalar(select(ApiToken).where(ApiToken.lookup == lookup))
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.digest, digest_of(token)):
            return None
        self._touch(row)
        return Principal(row.id, row.name, Role.parse(row.role), via="token")

    async def by_id(self, token_id: int) -> ApiToken | None:
        row = await self._session.get(ApiToken, token_id)
        return row if row is not None and row.revoked_at is None else None

    async def by_name(self, name: str) -> ApiToken | None:
        return await self._session.scalar(select(ApiToken).where(ApiToken.name == name))

    async def list(self) -> list[ApiToken]:
        return list(await self._session.scalars(select(ApiToken).order_by(ApiToken.id)))

    async def revoke(self, name: str) -> ApiToken:
        row = await self.by_name(name)
        if row is None:
            raise TokenError(f"no token named {name!r}")
        if row.revoked_at is None:
            row.revoked_at = _now()
            await self._session.flush()
        return row

    def _touch(self, row: ApiToken) -> None:
        now = _now()
        if row.last_used_at is None or now - _aware(row.last_used_at) > _TOUCH_EVERY:
            row.last_used_at = now


@dataclass(frozen=True, slots=True)
class SessionData:
    token_id: int
    csrf: str


class SessionCodec:
    """Signs and checks the dashboard's session cookie (``itsdangerous``, HMAC-SHA256, with an age
    limit). The cookie carries no token: stealing it gives a session, never a reusable API token."""

    cookie_name = "bg_session"

    def __init__(self, secret: str, *, max_age: timedelta = timedelta(hours=12)) -> None:
        if len(secret) < 32:
            raise ValueError("the session secret must be at least 32 characters")
        self._serializer = URLSafeTimedSerializer(
            secret, salt="breakglass.session", signer_kwargs={"digest_method": hashlib.sha256}
        )
        self.max_age = max_age

    def issue(self, token_id: int) -> tuple[str, SessionData]:
        data = SessionData(token_id=token_id, csrf=secrets.token_urlsafe(32))
        return self._serializer.dumps({"t": token_id, "c": data.csrf}), data

    def read(self, cookie: str) -> SessionData | None:
        try:
            raw = self._serializer.loads(cookie, max_age=int(self.max_age.total_seconds()))
        except BadSignature:
            return None
        if not isinstance(raw, dict):
            return None
        token_id, csrf = raw.get("t"), raw.get("c")
        if not isinstance(token_id, int) or not isinstance(csrf, str):
            return None
        return SessionData(token_id=token_id, csrf=csrf)

"""Authentication: unauthenticated callers get a bare 401, tokens are stored hashed, dashboard sessions
are HttpOnly/SameSite=Strict cookies whose writes need the CSRF token, and revocation is immediate."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.auth import Role, TokenStore
from breakglass.store.tokens import ApiToken

UNAUTHORIZED = {"detail": "unauthorized"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def login(client: httpx.AsyncClient, token: str) -> str:
    """Sign in through the form; returns the page's CSRF token."""
    response = await client.post("/login", data={"token": token, "next": "/"})
    assert response.status_code == 303, response.text
    page = await client.get("/")
    assert page.status_code == 200
    marker = '"X-CSRF-Token": "'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/health", None),
        ("GET", "/api/v1/events", None),
        ("GET", "/metrics", None),
        ("GET", "/api/v1/tokens", None),
        ("POST", "/api/v1/tokens/admin/revoke", None),
        ("GET", "/api/v1/no-such-thing", None),  # not 404: the caller may not learn what exists
        ("DELETE", "/api/v1/health", None),  # not 405
        ("POST", "/api/v1/tokens/x/revoke", b"{not json"),  # not 422
    ],
)
async def test_unauthenticated_requests_get_a_bare_401_and_nothing_else(
    client: httpx.AsyncClient, method: str, path: str, body: bytes | None
) -> None:
    response = await client.request(method, path, content=body)
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    [
        "Bearer bgt_wrong",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
        "bearer bgt_" + "A" * 43,
        "Bearer " + "x" * 5000,
    ],
)
async def test_malformed_or_unknown_tokens_are_refused(
    client: httpx.AsyncClient, tokens: dict[Role, str], header: str
) -> None:
    response = await client.get("/api/v1/health", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.json() == UNAUTHORIZED


async def test_a_token_differing_only_after_its_lookup_prefix_is_refused(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    real = tokens[Role.ADMIN]
    forged = real[:-1] + ("A" if real[-1] != "A" else "B")
    assert (await client.get("/api/v1/health", headers=bearer(real))).status_code == 200
    assert (await client.get("/api/v1/health", headers=bearer(forged))).status_code == 401


async def test_tokens_are_stored_only_as_sha256_digests(
    sessions: async_sessionmaker[AsyncSession], tokens: dict[Role, str]
) -> None:
    async with sessions() as session:
        dump = " ".join(str(row) for row in (await session.execute(text("SELECT * FROM api_tokens"))).all())
        rows = list(await session.scalars(select(ApiToken)))
    for token in tokens.values():
        assert token not in dump
        assert token[4:] not in dump
    assert {len(row.digest) for row in rows} == {64}


async def test_a_revoked_token_is_refused_at_once(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], tokens: dict[Role, str]
) -> None:
    assert (await client.get("/api/v1/health", headers=bearer(tokens[Role.VIEWER]))).status_code == 200
    async with sessions() as session, session.begin():
        await TokenStore(session).revoke("viewer")
    assert (await client.get("/api/v1/health", headers=bearer(tokens[Role.VIEWER]))).status_code == 401


async def test_login_sets_an_httponly_samesite_strict_cookie_and_never_the_token(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.post("/login", data={"token": tokens[Role.RESPONDER]})
    assert response.status_code == 303
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("bg_session=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
    assert tokens[Role.RESPONDER] not in cookie
    assert tokens[Role.RESPONDER][4:16] not in cookie


async def test_a_wrong_token_at_login_gets_the_form_again_and_no_cookie(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.post("/login", data={"token": "bgt_nope"})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert "not accepted" in response.text


async def test_an_unauthenticated_browser_is_sent_to_the_login_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/incidents/INC-1", headers={"Accept": "text/html"})
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/incidents/INC-1"


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example"])
async def test_login_never_redirects_off_site(
    client: httpx.AsyncClient, tokens: dict[Role, str], target: str
) -> None:
    response = await client.post("/login", data={"token": tokens[Role.VIEWER], "next": target})
    assert response.headers["location"] == "/"


async def test_a_login_posted_from_another_origin_is_refused(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    response = await client.post(
        "/login", data={"token": tokens[Role.VIEWER]}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_session_writes_need_the_csrf_token_and_a_same_origin(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    csrf = await login(client, tokens[Role.ADMIN])
    path = "/api/v1/tokens/viewer/revoke"
    assert (await client.post(path)).status_code == 403
    assert (await client.post(path, headers={"X-CSRF-Token": "guess"})).status_code == 403
    cross = {"X-CSRF-Token": csrf, "Origin": "https://evil.example"}
    assert (await client.post(path, headers=cross)).status_code == 403
    same = {"X-CSRF-Token": csrf, "Origin": "http://testserver"}
    assert (await client.post(path, headers=same)).status_code == 200


async def test_bearer_callers_need_no_csrf_token(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    response = await client.post("/api/v1/tokens/viewer/revoke", headers=bearer(tokens[Role.ADMIN]))
    assert response.status_code == 200
    assert response.json()["revoked_at"] is not None


async def test_revoking_a_token_ends_the_sessions_opened_with_it(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    await login(client, tokens[Role.RESPONDER])
    assert (await client.get("/api/v1/health")).status_code == 200
    revoked = await client.post("/api/v1/tokens/responder/revoke", headers=bearer(tokens[Role.ADMIN]))
    assert revoked.status_code == 200
    assert (await client.get("/api/v1/health")).status_code == 401


async def test_a_tampered_session_cookie_is_treated_as_no_session(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    await login(client, tokens[Role.ADMIN])
    cookie = client.cookies["bg_session"]
    payload, _, signature = cookie.partition(".")
    client.cookies.clear()
    client.cookies.set("bg_session", payload[:-2] + "AA." + signature)
    assert (await client.get("/api/v1/health")).status_code == 401


async def test_logout_clears_the_cookie(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    csrf = await login(client, tokens[Role.VIEWER])
    response = await client.post("/logout", headers={"X-CSRF-Token": csrf})
    assert response.status_code == 204
    assert response.headers["hx-redirect"] == "/login"
    assert (await client.get("/api/v1/health")).status_code == 401


async def test_every_answer_forbids_framing_and_sniffing_and_authenticated_ones_are_not_cached(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    for response in (
        await client.get("/login"),
        await client.get("/api/v1/health"),  # 401
        await client.get("/api/v1/health", headers=bearer(tokens[Role.VIEWER])),
    ):
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert "script-src 'self' 'unsafe-eval'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"

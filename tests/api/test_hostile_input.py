"""Hostile and careless input, on SQLite and PostgreSQL: every case the outside probe of issue 13
answered with a 500 (or a crash, or a silent acceptance) is now a 4xx that the OpenAPI spec lists,
with the security headers, and changes nothing.

Bodies with lone surrogates are sent as raw bytes: a JSON encoder would refuse to produce them.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.auth import Role
from breakglass.api.limits import MAX_BODY_BYTES, MAX_DEPTH
from breakglass.api.middleware import SecurityHeaders
from breakglass.app import RECURSION_LIMIT
from breakglass.store import migrate
from breakglass.store.db import make_engine
from breakglass.testing import empty_store, postgres_database
from breakglass.timeline import TimelineEvent

JSON = {"content-type": "application/json"}
SECURITY_HEADERS = {name.decode() for name, _value in SecurityHeaders.HEADERS} | {"cache-control"}


@pytest.fixture(scope="module")
def postgres_store(request: pytest.FixtureRequest) -> Iterator[str]:
    """One migrated PostgreSQL database for the module; each test empties it."""
    with postgres_database(request.getfixturevalue("postgres_url")) as url:
        migrate.upgrade(url)
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path, migrated_db: Path) -> str:
    """Overrides the API fixtures' store: every test here runs on both backends."""
    if request.param == "sqlite":
        target = tmp_path / "breakglass.db"
        shutil.copyfile(migrated_db, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("postgres_store")

    async def empty() -> None:
        engine = make_engine(url)
        await empty_store(engine)
        await engine.dispose()

    asyncio.run(empty())
    return url


def _auth(tokens: dict[Role, str], role: Role = Role.RESPONDER) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


async def _writes(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(TimelineEvent)) or 0)


def _spec_lists(api: FastAPI, method: str, route: str, status: int) -> bool:
    return str(status) in api.openapi()["paths"][route][method.lower()]["responses"]


def _has_security_headers(response: httpx.Response) -> None:
    missing = SECURITY_HEADERS - {k.lower() for k in response.headers}
    assert not missing, (response.status_code, missing)


async def test_lone_surrogates_and_nul_in_any_text_field_are_a_422_that_changes_nothing(
    client: httpx.AsyncClient,
    api: FastAPI,
    sessions: async_sessionmaker[AsyncSession],
    tokens: dict[Role, str],
    incident_id: str,
) -> None:
    inc = f"/api/v1/incidents/{incident_id}"
    cases: list[tuple[str, str, str]] = []
    for bad in (r"\ud800", r"a\udfffb", r"\u0000", r"x\u0000"):
        cases += [
            (f"{inc}/notes", "/api/v1/incidents/{incident_id}/notes", f'{{"text": "{bad}"}}'),
            (f"{inc}/participants", "/api/v1/incidents/{incident_id}/participants",
             f'{{"name": "{bad}", "role": "scribe"}}'),
            (f"{inc}/tasks", "/api/v1/incidents/{incident_id}/tasks", f'{{"title": "{bad}"}}'),
            (f"{inc}/tasks", "/api/v1/incidents/{incident_id}/tasks",
             f'{{"title": "t", "assignee": "{bad}"}}'),
            (f"{inc}/transition", "/api/v1/incidents/{incident_id}/transition",
             f'{{"to": "contained", "reason": "{bad}"}}'),
            (f"{inc}/severity", "/api/v1/incidents/{incident_id}/severity", f'{{"severity": "{bad}"}}'),
            (f"{inc}/reopen", "/api/v1/incidents/{incident_id}/reopen", f'{{"reason": "{bad}"}}'),
            ("/api/v1/silences", "/api/v1/silences",
             f'{{"matchers": ["monitor=x"], "comment": "{bad}", "duration_minutes": 5}}'),
            ("/api/v1/silences", "/api/v1/silences",
             f'{{"matchers": ["monitor={bad}"], "comment": "c", "duration_minutes": 5}}'),
            (f"{inc}/notes", "/api/v1/incidents/{incident_id}/notes", f'{{"text": "t", "{bad}": 1}}'),
        ]  # fmt: skip
    before = await _writes(sessions)
    for path, route, body in cases:
        response = await client.post(path, content=body.encode(), headers={**JSON, **_auth(tokens)})
        assert response.status_code == 422, (body, response.status_code, response.text)
        assert isinstance(response.json()["detail"], list), response.text  # parseable, and not echoed
        assert '"input"' not in response.text
        assert _spec_lists(api, "POST", route, 422)
        _has_security_headers(response)
    assert await _writes(sessions) == before


async def test_numbers_must_be_json_integers_within_the_columns(
    client: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], tokens: dict[Role, str],
    incident_id: str,
) -> None:  # fmt: skip
    inc = f"/api/v1/incidents/{incident_id}"
    headers = _auth(tokens)
    refused = [
        (f"{inc}/transition", {"to": "contained", "block": 2**63}),
        (f"{inc}/transition", {"to": "contained", "block": 2**64 + 5}),
        (f"{inc}/transition", {"to": "contained", "block": -1}),
        (f"{inc}/transition", {"to": "contained", "block": True}),
        (f"{inc}/tasks", {"title": "t", "due_at": False}),
        (f"{inc}/tasks", {"title": "t", "due_at": 1.0}),
        (f"{inc}/tasks", {"title": "t", "due_at": "5"}),
        ("/api/v1/silences", {"matchers": ["a=b"], "comment": "c", "duration_minutes": True}),
        ("/api/v1/silences", {"matchers": ["a=b"], "comment": "c", "ends_at": 2**63}),
    ]
    before = await _writes(sessions)
    for path, body in refused:
        response = await client.post(path, json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
    for path in ("/api/v1/silences/4611686018427387904/expire", "/api/v1/silences/2147483648/expire",
                 f"{inc}/tasks/4611686018427387904/status"):  # fmt: skip
        response = await client.post(path, json={"status": "done"}, headers=headers)
        assert response.status_code == 422, (path, response.text)
    assert await _writes(sessions) == before
    largest = await client.post("/api/v1/silences/2147483647/expire", headers=headers)
    assert largest.status_code == 404, largest.text  # the column's largest id is merely unknown
    task = await client.post(f"{inc}/tasks", json={"title": "t", "due_at": 2**53}, headers=headers)
    assert task.status_code == 201 and task.json()["due_at"] == 2**53
    contained = await client.post(f"{inc}/transition", json={"to": "contained", "block": 2**63 - 1},
                                  headers=headers)  # fmt: skip
    assert contained.status_code == 200 and contained.json()["contained_block"] == 2**63 - 1


async def test_nul_in_paths_and_queries_is_a_422(
    client: httpx.AsyncClient, tokens: dict[Role, str], incident_id: str
) -> None:
    headers = _auth(tokens, Role.ADMIN)
    for method, path in [
        ("GET", "/api/v1/incidents/inc-%00"),
        ("GET", "/api/v1/incidents/%00/timeline"),
        ("GET", "/api/v1/actions/key%00"),
        ("POST", "/api/v1/tokens/a%00b/revoke"),
        ("GET", "/api/v1/alerts?monitor_id=%00"),
        ("GET", "/api/v1/alerts?incident_id=%00"),
        ("GET", "/api/v1/timeline?incident_id=%00"),
    ]:
        response = await client.request(method, path, headers=headers)
        assert response.status_code == 422, (path, response.text)


async def test_bodies_that_cannot_be_read_are_a_listed_422_not_a_400(
    client: httpx.AsyncClient, api: FastAPI, tokens: dict[Role, str], incident_id: str
) -> None:
    path = f"/api/v1/incidents/{incident_id}/notes"
    for body in (b'{"text": "\xff\xfe"}', b'{"text": ', b"[1, 2", b"\x00"):
        response = await client.post(path, content=body, headers={**JSON, **_auth(tokens)})
        assert response.status_code == 422, (body, response.text)
    assert _spec_lists(api, "POST", "/api/v1/incidents/{incident_id}/notes", 422)


async def test_deep_or_huge_bodies_are_refused_before_parsing_whoever_sends_them(
    client: httpx.AsyncClient, api: FastAPI, tokens: dict[Role, str]
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000  # segfaulted the server (issue 13)
    for role in (Role.VIEWER, Role.RESPONDER):
        response = await client.post(
            "/api/v1/silences", content=deep, headers={**JSON, **_auth(tokens, role)}
        )
        assert response.status_code == 422 and "deeper than" in response.json()["detail"]
    just_deep = b'{"matchers": ' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}"
    response = await client.post("/api/v1/silences", content=just_deep, headers={**JSON, **_auth(tokens)})
    assert response.status_code == 422 and "deeper than" in response.json()["detail"]
    nested_ok = b'{"matchers": [[["a=b"]]], "comment": "c", "duration_minutes": 5}'
    response = await client.post("/api/v1/silences", content=nested_ok, headers={**JSON, **_auth(tokens)})
    assert response.status_code == 422 and isinstance(
        response.json()["detail"], list
    )  # validated, not refused
    huge = b'{"comment": "' + b"x" * MAX_BODY_BYTES + b'"}'
    response = await client.post("/api/v1/silences", content=huge, headers={**JSON, **_auth(tokens)})
    assert response.status_code == 413, response.text

    async def chunks() -> object:  # no Content-Length: the limit counts what arrives
        for _ in range(MAX_BODY_BYTES // 4096 + 2):
            yield b" " * 4096

    response = await client.post("/api/v1/silences", content=chunks(), headers={**JSON, **_auth(tokens)})  # type: ignore[arg-type]
    assert response.status_code == 413
    assert _spec_lists(api, "POST", "/api/v1/silences", 413)
    assert sys.getrecursionlimit() <= RECURSION_LIMIT  # create_api put back what imports raised


async def test_a_viewer_is_refused_before_its_body_is_read(
    client: httpx.AsyncClient, tokens: dict[Role, str], incident_id: str
) -> None:
    response = await client.post(f"/api/v1/incidents/{incident_id}/notes", content=b"{not json",
                                 headers={**JSON, **_auth(tokens, Role.VIEWER)})  # fmt: skip
    assert response.status_code == 403 and response.json() == {"detail": "forbidden"}


async def test_options_names_the_allowed_methods(client: httpx.AsyncClient, tokens: dict[Role, str]) -> None:
    response = await client.options("/api/v1/silences", headers=_auth(tokens))
    assert response.status_code == 204
    assert response.headers["allow"] == "GET, HEAD, OPTIONS, POST"
    response = await client.options("/api/v1/silences/5/expire", headers=_auth(tokens))
    assert response.headers["allow"] == "OPTIONS, POST"
    _has_security_headers(response)
    assert (await client.options("/api/v1/nothing-here", headers=_auth(tokens))).status_code == 404
    assert (await client.options("/api/v1/silences")).status_code == 401  # no hints without a token


async def test_token_timestamps_are_rfc3339_with_an_offset(
    client: httpx.AsyncClient, tokens: dict[Role, str]
) -> None:
    await client.get("/api/v1/incidents", headers=_auth(tokens, Role.ADMIN))  # sets its last_used_at
    response = await client.get("/api/v1/tokens", headers=_auth(tokens, Role.ADMIN))
    assert response.status_code == 200
    assert any(row["last_used_at"] is not None for row in response.json()), response.text
    for row in response.json():
        for name in ("created_at", "last_used_at"):
            if row[name] is not None:
                assert row[name].endswith(("+00:00", "Z")), row


async def test_every_answer_carries_the_security_headers_server_errors_included(
    api: FastAPI, client: httpx.AsyncClient, tokens: dict[Role, str], incident_id: str
) -> None:
    async def boom() -> None:
        raise RuntimeError("a bug")

    api.add_api_route("/api/v1/boom", boom, methods=["GET"])
    transport = httpx.ASGITransport(app=api, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as raw:
        error = await raw.get("/api/v1/boom", headers=_auth(tokens))
    assert error.status_code == 500 and "a bug" not in error.text
    _has_security_headers(error)
    answers = [
        await client.get("/api/v1/incidents"),  # 401
        await client.get("/api/v1/tokens", headers=_auth(tokens, Role.VIEWER)),  # 403
        await client.get("/api/v1/incidents/inc-none", headers=_auth(tokens)),  # 404
        await client.put("/api/v1/incidents", headers=_auth(tokens)),  # 405
        await client.post(  # 409
            f"/api/v1/incidents/{incident_id}/reopen", json={"reason": "r"}, headers=_auth(tokens)
        ),
        await client.post("/api/v1/silences", content=b"{", headers={**JSON, **_auth(tokens)}),  # 422
    ]
    assert [a.status_code for a in answers] == [401, 403, 404, 405, 409, 422]
    for answer in answers:
        _has_security_headers(answer)
    assert answers[3].headers["allow"]


async def test_a_viewer_sees_no_note_form(
    client: httpx.AsyncClient, tokens: dict[Role, str], incident_id: str
) -> None:
    viewer = await client.get(f"/incidents/{incident_id}", headers=_auth(tokens, Role.VIEWER))
    responder = await client.get(f"/incidents/{incident_id}", headers=_auth(tokens))
    assert viewer.status_code == responder.status_code == 200
    assert "Add a note" not in viewer.text and "Add a note" in responder.text

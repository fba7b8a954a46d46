"""Schemathesis against the published OpenAPI spec, over a real server: whatever a client sends that
the spec allows (and a good deal it does not), the API never answers with a server error (5xx).

Bounded (``MAX_EXAMPLES`` per operation) so that it runs in seconds; the live event stream is left
out because its response never ends (``test_live_events.py`` covers it).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from breakglass.api.application import create_api
from breakglass.api.auth import Role, TokenStore
from breakglass.api.openapi import render
from breakglass.api.server import ServerThread
from breakglass.app import App, build_app
from breakglass.bus import Topics
from breakglass.config import load_config
from breakglass.domain import Severity
from breakglass.respond import HttpRpc, build_responder
from breakglass.store.migrate import upgrade_async
from breakglass.testing import make_finding

MAX_EXAMPLES = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, str]]:
    folder = tmp_path_factory.mktemp("fuzz")
    config = folder / "breakglass.yaml"
    config.write_text(f"protocol: fuzz\nstore:\n  url: sqlite:///{folder / 'db.sqlite'}\n", encoding="utf-8")
    token: dict[str, str] = {}

    async def build() -> tuple[App, FastAPI]:
        loaded = load_config(config)
        await upgrade_async(loaded.settings.store.url)
        app = build_app(loaded)
        # The response engine on a chain that is never reached: no proposal exists to describe.
        app.components["respond"] = build_responder(loaded, app.bus, app.redactor,
                                                    rpc=HttpRpc("http://127.0.0.1:9"))  # fmt: skip
        api = create_api(app, session_secret="f" * 40)
        async with api.state.ctx.transaction() as session:
            _row, token["admin"] = await TokenStore(session).create("fuzzer", Role.ADMIN)
        return app, api

    thread = ServerThread(build).start()
    # Real data for the reads to find: an incident opened by the pipeline from a finding.
    thread.run(thread.app.bus.publish(Topics.FINDINGS, make_finding("fuzz", severity=Severity.HIGH)))  # type: ignore[union-attr]
    yield thread, token["admin"]
    thread.stop()


def test_no_request_the_spec_allows_causes_a_server_error(server: tuple[ServerThread, str]) -> None:
    thread, token = server
    schema = schemathesis.openapi.from_url(f"{thread.base_url}/openapi.json").exclude(path="/api/v1/events")
    headers = {"Authorization": f"Bearer {token}"}
    tried = []
    # Each operation's Hypothesis strategy driven by hand: schemathesis' lazy pytest fixture loader
    # does not work with pytest 9 (it reads a removed private attribute).
    for result in schema.get_all_operations():
        operation = result.ok()

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        @given(case=operation.as_strategy())
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        call()
        tried.append(operation.label)
    assert len(tried) >= 15, tried  # every documented operation was exercised


def test_the_spec_in_docs_is_the_one_the_server_publishes(server: tuple[ServerThread, str]) -> None:
    """docs/openapi.json is for reviewers; when this fails, regenerate it:
    ``.venv/bin/python -m breakglass.api.openapi``."""
    thread, _token = server
    published = httpx.get(f"{thread.base_url}/openapi.json", timeout=10).json()
    committed = Path(__file__).parents[2] / "docs" / "openapi.json"
    assert committed.read_text(encoding="utf-8") == render(published)

"""Schemathesis against the served OpenAPI spec with every check (``--checks all``), on SQLite and
PostgreSQL: no server error, every status and body as the spec says, valid data accepted, invalid
data refused with a 4xx, ``Allow`` on 405 and ``OPTIONS``, authentication enforced.

Schemathesis' own runner (``schemathesis run``, in a subprocess) drives a real server over loopback,
with a bounded budget: on SQLite its coverage phase (boundary values for every field: NUL, the
column limits, wrong types), a few fuzzed and stateful cases; on PostgreSQL, where NUL and integer
overflows used to give 500s, the coverage phase. A fixed seed keeps ``make test`` deterministic;
``BREAKGLASS_FUZZ_SEED`` and ``BREAKGLASS_FUZZ_EXAMPLES`` explore further. Left out: the live event
stream (its response never ends; ``test_live_events.py``) and token revocation, which would revoke
the fuzzer's own token (``test_authorization.py``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

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
from breakglass.testing import make_finding, postgres_database

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
CONFIG = Path(__file__).parent / "schemathesis.toml"
SEED = os.environ.get("BREAKGLASS_FUZZ_SEED", "13")
EXAMPLES = os.environ.get("BREAKGLASS_FUZZ_EXAMPLES", "3")
PHASES = {"sqlite": "coverage,fuzzing,stateful", "postgres": "coverage"}


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, ServerThread, str]]:
    folder = tmp_path_factory.mktemp("fuzz")
    with contextlib.ExitStack() as stack:
        url = f"sqlite:///{folder / 'db.sqlite'}"
        if request.param == "postgres":
            url = stack.enter_context(postgres_database(request.getfixturevalue("postgres_url")))
        config = folder / "breakglass.yaml"
        config.write_text(f"protocol: fuzz\nstore:\n  url: {url}\n", encoding="utf-8")
        token: dict[str, str] = {}

        async def build() -> tuple[App, FastAPI]:
            loaded = load_config(config)
            await upgrade_async(loaded.settings.store.url)
            app = build_app(loaded)
            # The response engine on a chain that is never reached: no proposal exists to describe.
            app.components.respond = build_responder(loaded, app.bus, app.redactor,
                                                        rpc=HttpRpc("http://127.0.0.1:9"))  # fmt: skip
            api = create_api(app, session_secret="f" * 40)
            async with api.state.ctx.transaction() as session:
                _row, token["admin"] = await TokenStore(session).create("fuzzer", Role.ADMIN)
            return app, api

        thread = ServerThread(build).start()
        # Real data for the reads to find: an incident opened by the pipeline from a finding.
        finding = make_finding("fuzz", severity=Severity.HIGH)
        thread.run(thread.app.bus.publish(Topics.FINDINGS, finding))  # type: ignore[union-attr]
        try:
            yield request.param, thread, token["admin"]
        finally:
            thread.stop()


@pytest.mark.slow
def test_the_api_answers_as_its_spec_says(server: tuple[str, ServerThread, str], tmp_path: Path) -> None:
    backend, thread, token = server
    command = [
        str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", f"{thread.base_url}/openapi.json",
        "--checks", "all", "--phases", PHASES[backend], "--max-examples", EXAMPLES, "--seed", SEED,
        "--header", f"Authorization: Bearer {token}",
        "--exclude-path", "/api/v1/events", "--exclude-path", "/api/v1/tokens/{name}/revoke",
        "--generation-database", "none", "--no-color", "--workers", "1",
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-6000:]
    assert "passed" in output and "Tested: 33" in output, output[-3000:]  # every operation ran (probes too)


def test_the_spec_in_docs_is_the_one_the_server_publishes(server: tuple[str, ServerThread, str]) -> None:
    """docs/openapi.json is for reviewers; when this fails, regenerate it:
    ``.venv/bin/python -m breakglass.api.openapi``."""
    _backend, thread, _token = server
    published = httpx.get(f"{thread.base_url}/openapi.json", timeout=10).json()
    committed = Path(__file__).parents[2] / "docs" / "openapi.json"
    assert committed.read_text(encoding="utf-8") == render(published)

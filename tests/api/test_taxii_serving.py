"""Our shared intel served over TAXII 2.1 to a peer's breakglass: the peer's token (role ``peer``)
reads the collection with taxii2-client and imports the signed indicators; it reads nothing else,
and a bundle that no longer verifies is not served."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from breakglass.api.application import create_api
from breakglass.api.auth import Role, TokenStore
from breakglass.app import build_app
from breakglass.config import load_config
from breakglass.config.intel import IntelSourceConfig
from breakglass.intel.bundle import AttackContract, IncidentIntel, build_bundle
from breakglass.intel.feed import pull_sources, read_store
from breakglass.intel.signing import sign_bundle
from breakglass.respond.signer import LocalSigner

KEY = "0x" + "f6" * 32
ATTACKER = "0x" + "ab" * 20
SECRET = "s" * 48


def _bundle(incident: str, attacker: str) -> dict[str, Any]:
    intel = IncidentIntel(incident, "drained", "venue-a", 31337, "critical", int(time.time() * 1000) - 1000,
                          (attacker,), (AttackContract("0x" + "cd" * 20, "0x" + "ee" * 32),))  # fmt: skip
    return sign_bundle(build_bundle(intel, producer="Venue A", now_ms=int(time.time() * 1000)),
                       LocalSigner.from_key(KEY))  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(
    tmp_path: Path,
    store_url: str,
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[str, dict[Role, str]]]:
    monkeypatch.setenv("INTEL_KEY", KEY)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "inc-1.json").write_text(json.dumps(_bundle("inc-1", ATTACKER)), encoding="utf-8")
    forged = _bundle("inc-2", "0x" + "55" * 20)
    forged["objects"][1]["name"] = "changed after signing"
    (tmp_path / "shared" / "inc-2.json").write_text(json.dumps(forged), encoding="utf-8")
    config = tmp_path / "breakglass.yaml"
    intel = "{producer: Venue A, signer: {env: INTEL_KEY}, export: {folder: shared, chain: false}}"
    config.write_text(f"protocol: venue-a\nstore: {{url: '{store_url}'}}\nintel: {intel}\n", encoding="utf-8")
    app = build_app(load_config(config))
    tokens: dict[Role, str] = {}
    async with sessions() as session, session.begin():
        for role in (Role.PEER, Role.VIEWER):
            _row, tokens[role] = await TokenStore(session).create(str(role), role)
    api = create_api(app, session_secret=SECRET, sessions=sessions)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_config=None, lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started:
            break
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", tokens
    finally:
        server.should_exit = True
        await task
        await app.close()


async def test_a_peer_reads_our_collection_with_taxii2_client_and_imports_what_verifies(
    served: tuple[str, dict[Role, str]], tmp_path: Path
) -> None:
    base, tokens = served
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        headers = {
            "Authorization": f"Bearer {tokens[Role.PEER]}",
            "Accept": "application/taxii+json;version=2.1",
        }
        [collection] = (await http.get("/taxii2/intel/collections/", headers=headers)).json()["collections"]
        assert (await http.get("/api/v1/incidents", headers=headers)).status_code == 403  # nothing else
    url = f"{base}/taxii2/intel/collections/{collection['id']}/"
    source = IntelSourceConfig(name="venue-a", taxii={"url": url, "token": tokens[Role.PEER]},  # type: ignore[arg-type]
                               signers=[LocalSigner.from_key(KEY).address], severity="critical")  # fmt: skip
    [report] = await asyncio.to_thread(pull_sources, [source], tmp_path, tmp_path / "peer.json",
                                       now_ms=int(time.time() * 1000))  # fmt: skip
    assert report.accepted == 1 and report.refused == {}, report.problems
    values = {i.value for i in read_store(tmp_path / "peer.json")}
    assert ATTACKER in values and "0x" + "55" * 20 not in values  # the forged bundle is not served


async def test_the_collection_is_unknown_to_a_wrong_id_and_discovery_names_the_root(
    served: tuple[str, dict[Role, str]],
) -> None:
    base, tokens = served
    headers = {"Authorization": f"Bearer {tokens[Role.PEER]}"}
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        discovery = await http.get("/taxii2/", headers=headers)
        assert discovery.headers["content-type"].startswith("application/taxii+json")
        assert discovery.json()["api_roots"] == [f"{base}/taxii2/intel/"]
        assert (await http.get("/taxii2/intel/collections/nope/objects/", headers=headers)).status_code == 404

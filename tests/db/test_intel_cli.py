"""breakglass intel export / verify / pull end to end on a stored incident (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.domain import Severity
from breakglass.incidents.service import IncidentService
from breakglass.intel.feed import read_store
from breakglass.logs import configure_logging
from breakglass.respond.signer import LocalSigner
from breakglass.store.db import Store
from breakglass.store.outbox import transaction
from breakglass.testing import FakeClock, make_finding

runner = CliRunner()
KEY = "0x" + "c3" * 32
ATTACKER = "0x" + "ab" * 20
ATTACK_CONTRACT = "0x" + "cd" * 20
CODE_HASH = "0x" + "ee" * 32


def _cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200", "INTEL_KEY": KEY})
    configure_logging()  # the command logged to the runner's stream, closed now: log to stderr again
    return result.exit_code, result.output


def _seed(url: str) -> str:
    async def run() -> str:
        store = Store(url)
        service = IncidentService(FakeClock(int(time.time() * 1000)), protocol="venue-a")
        try:
            async with transaction(store.sessions) as session:
                proven = make_finding("attack-sim", block=100, severity=Severity.CRITICAL, evidence={
                    "signal": "attack-contract-simulation", "contract": ATTACK_CONTRACT,
                    "attacker": ATTACK_CONTRACT, "deployer": ATTACKER, "code_hash": CODE_HASH})  # fmt: skip
                drained = make_finding("flows", block=101, severity=Severity.CRITICAL,
                                       tx_hash="0x" + "0f" * 32, evidence={"sender": ATTACKER})  # fmt: skip
                for finding in (proven, drained):
                    attached = await service.attach_finding(session, finding, group_key="g",
                                                            group_labels={}, window_ms=60_000)  # fmt: skip
            return attached.incident.id
        finally:
            await store.close()

    return asyncio.run(run())


def test_an_incident_exported_verified_and_pulled_by_a_peer(migrated_url: str, tmp_path: Path) -> None:
    db_url = migrated_url
    incident = _seed(db_url)
    signer = LocalSigner.from_key(KEY).address
    ours = tmp_path / "a.yaml"
    ours.write_text(
        "protocol: venue-a\nintel: {signer: {env: INTEL_KEY}, producer: Venue A}\n", encoding="utf-8"
    )
    code, out = _cli("intel", "export", incident, "--no-chain", "--out", str(tmp_path / "feed" / "a.json"),
                     "-c", str(ours), "--url", db_url)  # fmt: skip
    assert code == 0, out
    assert f"signed by {signer}" in out
    bundle = json.loads((tmp_path / "feed" / "a.json").read_text(encoding="utf-8"))
    patterns = {o["pattern"] for o in bundle["objects"] if o["type"] == "indicator"}
    assert f"[x-evm-account:address = '{ATTACKER}']" in patterns
    assert f"[x-evm-contract:code_hash = '{CODE_HASH}']" in patterns

    peer = tmp_path / "b.yaml"
    source = f"{{name: venue-a, file: feed, signers: ['{signer}'], severity: critical}}"
    peer.write_text(f"protocol: venue-b\nintel:\n  sources:\n    - {source}\n", encoding="utf-8")
    code, out = _cli("intel", "verify", str(tmp_path / "feed" / "a.json"), "-c", str(peer))
    assert code == 0 and "signature valid" in out and "trusted by source(s): venue-a" in out, out
    code, out = _cli("intel", "pull", "-c", str(peer))
    assert code == 0, out
    stored = {(i.kind, i.value, i.severity) for i in read_store(tmp_path / ".breakglass" / "intel.json")}
    assert {("account", ATTACKER, "critical"), ("code_hash", CODE_HASH, "critical")} <= stored

    bundle["objects"][1]["name"] = "changed"
    (tmp_path / "feed" / "a.json").write_text(json.dumps(bundle), encoding="utf-8")
    code, out = _cli("intel", "verify", str(tmp_path / "feed" / "a.json"))
    assert code == 1 and "changed after signing" in out
    code, out = _cli("intel", "pull", "-c", str(peer))
    assert code == 1 and "1 tampered" in out

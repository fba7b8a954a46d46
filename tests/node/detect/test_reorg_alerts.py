"""After a real reorg (``anvil_reorg`` of depth 2, 3 and 5) the new branch's findings are live alerts in
the incident, next to the retracted ones of the orphaned blocks (issue 20, item 2).

The monitor is an invariant: its finding is keyed by block number, so the new branch raises the very
fingerprint the orphaned block did, which dedup used to count as a repeat of the retracted alert.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from detect_support import USD, Probe  # type: ignore[import-not-found]
from sqlalchemy import select

from breakglass.alerts.models import AlertRow
from breakglass.app import build_app
from breakglass.config import load_config
from breakglass.detect.service import Watcher
from breakglass.incidents.models import Incident
from breakglass.roles.incidents import IncidentStage
from breakglass.testing import eventually
from breakglass.timeline import TimelineEvent, verify_chain

pytestmark = pytest.mark.node

CONFIG = """protocol: probe
deployment: manifest.json
store:
  url: sqlite:///{db}
monitors:
  - id: vault-full
    kind: invariant
    severity: critical
    calls: {{held: usd.balanceOf(vault)}}
    expect: held < 50000000.0
"""


@pytest.mark.parametrize("depth", [2, 3, 5])
async def test_the_new_branch_of_a_reorg_raises_live_alerts_in_the_incident(
    probe: Probe, tmp_path: Path, depth: int
) -> None:
    path = tmp_path / "breakglass.yaml"
    path.write_text(CONFIG.format(db=tmp_path / "bg.db"), encoding="utf-8")
    app = build_app(load_config(path, environ={}))
    watcher, stage = app.components.watcher, app.components.incidents
    assert isinstance(watcher, Watcher) and isinstance(stage, IncidentStage)
    sessions = stage.store.sessions
    await app.start()
    app.subscribe()
    await stage.start()
    await watcher.start()
    try:
        watcher.follower.start_block = probe.w3.eth.block_number + 1
        user = probe.users[0]
        probe.send(probe.token.functions.mint(user, 100 * USD), user)
        probe.send(probe.token.functions.approve(probe.vault.address, 100 * USD), user)
        deposit = probe.vault.functions.deposit(100 * USD)
        breach_block = probe.send(deposit, user)["blockNumber"]
        probe.node.mine(depth - 1)
        await watcher.follower.step()
        old_hash = probe.w3.eth.get_block(breach_block)["hash"].to_0x_hex()

        async def alerts() -> list[Any]:
            async with sessions() as session:
                return list((await session.scalars(select(AlertRow).order_by(AlertRow.id))).all())

        async def first_alert() -> bool:
            return len(await alerts()) == 1

        await eventually(first_alert, what="the breach's alert")
        [original] = await alerts()
        assert original.block_hash == old_hash and original.incident_id is not None
        # the same deposit again on a new branch replacing the last `depth` blocks
        replay = {"from": user, "to": probe.vault.address, "data": deposit._encode_transaction_data(),
                  "gas": hex(300_000)}  # fmt: skip
        probe.node.rpc("anvil_reorg", depth, [[replay, 0]])
        new_hash = probe.w3.eth.get_block(breach_block)["hash"].to_0x_hex()
        assert new_hash != old_hash
        for _ in range(3):
            await watcher.follower.step()
        assert watcher.follower.reorgs == 1

        async def live_again() -> bool:
            return any(a.status == "active" and a.block_hash == new_hash for a in await alerts())

        await eventually(live_again, what="a live alert for the new branch's breach")
        rows = await alerts()
        live = [a for a in rows if a.status == "active"]
        retracted = [a for a in rows if a.status == "retracted"]
        assert [a.fingerprint for a in live] == [original.fingerprint]  # the fingerprint, live again
        assert live[0].block_number == breach_block and live[0].incident_id == original.incident_id
        assert [a.block_hash for a in retracted] == [old_hash]
        assert retracted[0].fingerprint.startswith(original.fingerprint + "~")
        async with sessions() as session:
            incident = await session.get(Incident, original.incident_id)
            assert incident is not None and incident.alert_count == 2
            entries = (
                await session.scalars(
                    select(TimelineEvent).where(TimelineEvent.incident_id == original.incident_id)
                )
            ).all()
            hashes = [e.data.get("block_hash") for e in entries if e.kind == "finding"]
            assert hashes.count(new_hash) == 1 and old_hash in hashes  # found, retracted, found again
            assert any(e.data.get("retracted") for e in entries if e.kind == "finding")
            assert (await verify_chain(session)).ok
    finally:
        await asyncio.sleep(0)
        await app.close()

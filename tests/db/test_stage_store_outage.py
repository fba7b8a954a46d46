"""The incident stage while its SQLite store is locked by another connection: every finding and
action published meanwhile is written once the lock goes, none twice, and the outage is announced
through the configured channels when it begins and when it ends (issue 20)."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import func, select

from breakglass.alerts.models import AlertRow
from breakglass.bus import InProcessBus, Topics
from breakglass.config import load_config
from breakglass.domain import Severity
from breakglass.incidents.models import Incident
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.roles.incidents import build_incident_stage
from breakglass.store.db import Store
from breakglass.store.migrate import upgrade_async
from breakglass.testing import HttpReceiver, SqliteLock, eventually, make_finding
from breakglass.timeline import TimelineEvent

CONFIG = """
protocol: perp
store: {{url: "sqlite:///{db}"}}
alerting:
  default_receivers: [soc]
notifications:
  channels:
    - {{name: soc, kind: webhook, url: "{receiver}/soc"}}
"""


async def test_findings_and_actions_during_a_lock_are_all_written_once_and_the_outage_is_announced(
    tmp_path: Path,
) -> None:
    db = tmp_path / "bg.db"
    with HttpReceiver() as receiver:
        path = tmp_path / "breakglass.yaml"
        path.write_text(CONFIG.format(db=db, receiver=receiver.url), encoding="utf-8")
        config = load_config(path)
        await upgrade_async(config.settings.store.url)
        store = Store(config.settings.store.url, busy_timeout=0.2)  # short only to keep the test short
        bus = InProcessBus()
        stage = build_incident_stage(config, bus, store)
        await stage.start()
        findings = [make_finding("flows", block=100 + i, severity=Severity.CRITICAL) for i in range(6)]
        try:
            await bus.publish(Topics.FINDINGS, findings[0])

            async def count(table: type[AlertRow] | type[TimelineEvent]) -> int:
                async with store.sessions() as session:
                    return int(await session.scalar(select(func.count()).select_from(table)) or 0)

            async def events() -> list[str]:
                return [json.loads(r.body)["event"] for r in receiver.requests]

            async def first_stored() -> bool:
                return await count(AlertRow) == 1

            await eventually(first_stored, what="the first alert")
            async with SqliteLock(db):
                for finding in findings[1:]:
                    await bus.publish(Topics.FINDINGS, finding)
                await bus.publish(Topics.ACTIONS, ActionEvent(
                    step=ActionStep.CONFIRMED, key="k", playbook="guard", action="pause",
                    target="Venue.pause()", finding_fingerprint=findings[0].fingerprint,
                    tx_hash="0x" + "44" * 32, detail={"block_number": 103}))  # fmt: skip

                async def announced() -> bool:
                    return "store.unavailable" in await events()

                await eventually(announced, within=20, what="the outage announced")
                assert not store.health.available
                assert await count(AlertRow) == 1  # nothing written meanwhile (reads still work)

            async def contained() -> bool:  # the action consumer retries on its own backoff
                async with store.sessions() as session:
                    return [i.state for i in await session.scalars(select(Incident))] == ["contained"]

            async def all_written() -> bool:
                written = await count(AlertRow) == 6 and "store.available" in await events()
                return written and await contained()

            await eventually(all_written, within=30, what="everything written once the lock went")
            async with store.sessions() as session:
                fingerprints = list(await session.scalars(select(AlertRow.fingerprint)))
                incident = (await session.scalars(select(Incident))).one()
                steps = [e.data for e in await session.scalars(select(TimelineEvent))
                         if (e.data or {}).get("key") == "k"]  # fmt: skip
        finally:
            await stage.close()
            await store.close()
    assert sorted(fingerprints) == sorted(f.fingerprint for f in findings)  # each once
    assert incident.state == "contained" and incident.alert_count == 6
    assert [s["step"] for s in steps] == ["confirmed"]  # the action in the incident's timeline, once
    outage = [
        json.loads(r.body) for r in receiver.requests if json.loads(r.body)["event"].startswith("store")
    ]
    assert [o["event"] for o in outage] == ["store.unavailable", "store.available"]
    assert outage[0]["store"]["error"] == "database is locked"

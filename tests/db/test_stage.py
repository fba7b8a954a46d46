"""The wired incident stage (``build_app``): a published finding pages, a confirmed pause contains.

Real parts only: the configured store (SQLite or PostgreSQL), the in-process bus, a real HTTP
receiver for a signed webhook and an Apprise json:// channel.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from breakglass.alerts.models import AlertRow
from breakglass.app import build_app
from breakglass.bus import Topics
from breakglass.config import load_config
from breakglass.domain import Severity
from breakglass.incidents.models import Incident
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.messages.findings import Retraction
from breakglass.notify.webhook import verify
from breakglass.roles.incidents import IncidentStage
from breakglass.testing import HttpReceiver, eventually, make_finding
from breakglass.timeline import verify_chain

SECRET = "whsec-stage-0123456789"

CONFIG = """
protocol: perp
store:
  url: {url}
alerting:
  routes:
    - matchers: ["severity>=critical"]
      receivers: [soc, ops]
notifications:
  channels:
    - name: soc
      kind: webhook
      url: {receiver}/soc
      secret: {secret}
    - name: ops
      url: {apprise}/ops
"""


async def test_findings_page_and_a_confirmed_pause_contains(db_url: str, tmp_path: Path) -> None:
    with HttpReceiver() as receiver:
        path = tmp_path / "breakglass.yaml"
        path.write_text(CONFIG.format(url=db_url, receiver=receiver.url, secret=SECRET,
                                      apprise=receiver.url.replace("http://", "json://")))  # fmt: skip
        app = build_app(load_config(path))
        stage = app.components.incidents
        assert isinstance(stage, IncidentStage)
        sessions = app.components.store.sessions
        try:
            await stage.start()
            finding = make_finding("flows", severity=Severity.CRITICAL, block_hash="0x" + "33" * 32)
            await app.bus.publish(Topics.FINDINGS, finding)
            await app.bus.publish(Topics.FINDINGS, make_finding("flows", block=101, severity=Severity.INFO))

            async def paged() -> bool:
                return len(receiver.requests) >= 2

            await eventually(paged, within=20, what="the opened incident paged on both channels")
            await app.bus.publish(Topics.ACTIONS, ActionEvent(
                step=ActionStep.CONFIRMED, key="k", playbook="guard", action="pause",
                target="Venue.pause()", finding_fingerprint=finding.fingerprint,
                tx_hash="0x" + "44" * 32, detail={"block_number": 101}))  # fmt: skip

            async def contained_paged() -> bool:
                return len(receiver.requests) >= 4

            await eventually(contained_paged, within=20, what="the containment paged")
            await app.bus.publish(Topics.RETRACTIONS, Retraction(31337, 100, "0x" + "33" * 32,
                                                                 (finding.fingerprint,)))  # fmt: skip

            async def retracted() -> bool:
                async with sessions() as session:
                    row = (await session.scalars(select(AlertRow).where(
                        AlertRow.fingerprint == finding.fingerprint))).one()  # fmt: skip
                    return row.status == "retracted"

            await eventually(retracted, what="the reorged finding's alert retracted")
            async with sessions() as session:
                (incident,) = (await session.scalars(select(Incident))).all()
                assert (await verify_chain(session)).ok
        finally:
            await app.close()
    assert incident.state == "contained" and incident.contained_block == 101
    assert incident.alert_count == 1  # the info finding stayed an alert (below incident_min_severity)
    soc = [r for r in receiver.requests if r.path == "/soc"]
    assert [json.loads(r.body)["event"] for r in soc] == ["opened", "state:contained"]
    assert all(verify(SECRET, r.headers, r.body) for r in soc)
    assert len([r for r in receiver.requests if r.path == "/ops"]) == 2

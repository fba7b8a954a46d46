"""No finding is lost while a consumer is still starting (issue 20, item 4).

The race, forced deterministically: the incident stage's migration is held open while a producer
publishes findings on the in-process bus (which keeps nothing for a topic nobody subscribed). Before
the fix the stage subscribed only after its migration, and these findings vanished without a trace.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from breakglass.alerts.models import AlertRow
from breakglass.app import build_app
from breakglass.bus import Topics
from breakglass.config import load_config
from breakglass.domain import Severity
from breakglass.roles.incidents import IncidentStage
from breakglass.testing import eventually, make_finding


async def test_findings_published_during_a_slow_migration_all_become_alerts(
    migrated_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "breakglass.yaml"
    path.write_text(f"protocol: perp\nstore:\n  url: {migrated_url}\n")
    app = build_app(load_config(path))
    stage = app.components.incidents
    assert isinstance(stage, IncidentStage)
    migrating, release = asyncio.Event(), asyncio.Event()
    upgrade = stage.store.upgrade

    async def slow_upgrade() -> None:
        migrating.set()
        await release.wait()  # the producer publishes while the stage is here
        await upgrade()

    stage.store.upgrade = slow_upgrade  # type: ignore[method-assign]
    stop = asyncio.Event()
    await app.start()  # what `serve` does before it runs the components
    app.subscribe()
    running = asyncio.create_task(stage.run(stop))
    try:
        await asyncio.wait_for(migrating.wait(), 10)
        findings = [make_finding("probe", block=n, severity=Severity.CRITICAL) for n in range(117, 129)]
        for finding in findings:
            await app.bus.publish(Topics.FINDINGS, finding)  # the watcher catching up meanwhile
        release.set()
        sessions = app.components.store.sessions

        async def stored() -> bool:
            async with sessions() as session:
                rows = (await session.scalars(select(AlertRow.fingerprint))).all()
            return set(rows) >= {f.fingerprint for f in findings}

        await eventually(stored, within=20, what="an alert for each of the 12 findings")
    finally:
        stop.set()
        await running
        await app.close()

"""The responder as wired by build_app: findings from the bus in, steps out on Topics.ACTIONS."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from respond_support import GUARDIAN_ENV, Venue, finding, write_config

from breakglass.app import build_app
from breakglass.bus import Topics
from breakglass.config import load_config
from breakglass.respond import ActionStep, Responder
from breakglass.store.migrate import upgrade_async

pytestmark = pytest.mark.node


async def test_build_app_wires_a_responder_that_consumes_findings_and_publishes_every_step(
    venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(GUARDIAN_ENV, venue.guardian_key)
    config = load_config(write_config(Path(venue.manifest.parent)))
    await upgrade_async(config.settings.store.url)  # as `breakglass watch` does before starting the app
    app = build_app(config)
    responder = app.components.respond
    assert isinstance(responder, Responder)
    actions = app.bus.subscribe(Topics.ACTIONS, "test")
    stop = asyncio.Event()
    running = asyncio.create_task(responder.run(stop))
    await asyncio.sleep(0)  # one turn of the loop: run() subscribes before its first await
    try:
        await app.bus.publish(Topics.FINDINGS, finding())
        seen: list[ActionStep] = []
        async with asyncio.timeout(30):
            # Receipts are tracked concurrently with the playbook: wait for every expected step, in any order.
            wanted = [ActionStep.CONFIRMED] * 3 + [ActionStep.RATIFICATION_OPENED, ActionStep.NOTIFY]
            while any(seen.count(step) < wanted.count(step) for step in wanted):
                seen.append((await anext(actions)).step)
        assert seen.count(ActionStep.SUBMITTED) == 3
        assert venue.view("paused") and venue.view("marketPaused", 7)
    finally:
        stop.set()
        await running
        await app.close()

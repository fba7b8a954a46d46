"""Containment steps that arrive before their finding is in an incident land in that incident's
timeline once it is (issue 20, item 6): the responder acts before the alert stage groups."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from breakglass.app import build_app
from breakglass.bus import Topics
from breakglass.config import load_config
from breakglass.domain import Severity
from breakglass.incidents.models import Incident, PendingAction
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.roles.incidents import IncidentStage
from breakglass.testing import eventually, make_finding
from breakglass.timeline import TimelineEvent, verify_chain


async def test_steps_taken_before_the_finding_was_grouped_are_recorded_in_its_incident(
    migrated_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "breakglass.yaml"
    path.write_text(f"protocol: perp\nstore:\n  url: {migrated_url}\n")
    app = build_app(load_config(path))
    stage = app.components.incidents
    assert isinstance(stage, IncidentStage)
    sessions = stage.store.sessions
    finding = make_finding("oracle-deviation", severity=Severity.CRITICAL, block=7)
    steps = [
        ActionEvent(ActionStep.FAILED, "k1", "contain", "block-attacker", "guardian.blockAccount",
                    finding.fingerprint, detail={"error": "no attacker label"}),
        ActionEvent(ActionStep.SUBMITTED, "k2", "contain", "pause-market", "guardian.pauseMarket(0)",
                    finding.fingerprint, tx_hash="0x" + "aa" * 32),
        ActionEvent(ActionStep.CONFIRMED, "k2", "contain", "pause-market", "guardian.pauseMarket(0)",
                    finding.fingerprint, tx_hash="0x" + "aa" * 32, detail={"block_number": 8}),
    ]  # fmt: skip
    await stage.start()
    try:
        for step in steps:  # the responder was faster than the alert stage
            await stage.actions.handle(step)
        async with sessions() as session:
            assert len((await session.scalars(select(PendingAction))).all()) == 3
        await app.bus.publish(Topics.FINDINGS, finding)

        async def contained() -> bool:
            async with sessions() as session:
                return [i.state for i in (await session.scalars(select(Incident))).all()] == ["contained"]

        await eventually(contained, what="the incident contained by the step that came first")
        async with sessions() as session:
            (incident,) = (await session.scalars(select(Incident))).all()
            entries = (
                await session.scalars(
                    select(TimelineEvent)
                    .where(TimelineEvent.incident_id == incident.id)
                    .order_by(TimelineEvent.seq)
                )
            ).all()
            recorded = [(e.data["action"], e.data["step"]) for e in entries if "step" in e.data]
            assert recorded == [
                ("block-attacker", "failed"),
                ("pause-market", "submitted"),
                ("pause-market", "confirmed"),
            ]
            assert all(e.data.get("late") for e in entries if "step" in e.data)
            assert incident.contained_block == 8
            assert (await session.scalars(select(PendingAction))).all() == []
            assert (await verify_chain(session)).ok
    finally:
        await app.close()

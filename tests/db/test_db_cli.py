"""The store-backed commands end to end: db, incidents, audit verify, report (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from sqlalchemy import delete, insert, text
from typer.testing import CliRunner

from breakglass.cli.main import app
from breakglass.domain import Severity
from breakglass.incidents.actions import ActionRecorder
from breakglass.incidents.service import IncidentService
from breakglass.logs import configure_logging
from breakglass.messages.actions import ActionEvent, ActionStep
from breakglass.store import migrate
from breakglass.store.db import Store
from breakglass.store.outbox import transaction
from breakglass.store.tables import metadata
from breakglass.testing import FakeClock, make_finding
from breakglass.timeline import GENESIS, TimelineHead

runner = CliRunner()
TX = "0x" + "ee" * 32


def _cli(*args: str, url: str) -> tuple[int, str]:
    result = runner.invoke(app, [*args, "--url", url], env={"COLUMNS": "200"})
    configure_logging()  # the command logged to the runner's stream, closed now: log to stderr again
    return result.exit_code, result.output


def _seed(url: str) -> str:
    """An incident with two findings carrying value at risk, a confirmed pause and a note."""

    async def run() -> str:
        store = Store(url)
        clock = FakeClock()
        service = IncidentService(clock, protocol="perp")
        try:
            async with transaction(store.sessions) as session:
                for block, var in ((100, 1_000_000.0), (101, 2_500_000.0)):
                    evidence = {"value_at_risk": var, "call": "withdraw(uint256)"}
                    finding = make_finding("flows", block=block, severity=Severity.CRITICAL,
                                           tx_hash=f"0x{block:064x}", evidence=evidence)  # fmt: skip
                    attached = await service.attach_finding(session, finding, group_key="g",
                                                            group_labels={}, window_ms=60_000)  # fmt: skip
                clock.advance(3)
                await ActionRecorder(service).record(session, ActionEvent(
                    step=ActionStep.CONFIRMED, key="k", playbook="guard", action="pause",
                    target="Venue.pause()", finding_fingerprint=finding.fingerprint, tx_hash=TX,
                    detail={"block_number": 102}))  # fmt: skip
            return attached.incident.id
        finally:
            await store.close()

    return asyncio.run(run())


def test_db_commands_report_and_move_the_revision(db_url: str) -> None:
    code, out = _cli("db", "current", url=db_url)
    assert code == 1 and "base (empty)" in out
    assert _cli("db", "upgrade", url=db_url)[0] == 0
    code, out = _cli("db", "current", url=db_url)
    assert code == 0 and f"at {migrate.head()}" in out
    code, out = _cli("db", "downgrade", "base", url=db_url)
    assert code == 0 and "base (empty)" in out
    assert _cli("db", "upgrade", url=db_url)[0] == 0


@pytest.fixture
def empty_url(db_url: str) -> str:
    """The module's database at head with every table emptied."""
    migrate.upgrade(db_url)

    async def clear() -> None:
        store = Store(db_url)
        try:
            async with store.engine.begin() as conn:
                for table in reversed(metadata.sorted_tables):
                    await conn.execute(delete(table))
                await conn.execute(insert(TimelineHead).values(id=1, seq=0, hash=GENESIS))
        finally:
            await store.close()

    asyncio.run(clear())
    return db_url


def test_incident_commands_list_show_ack_note_and_transition(empty_url: str) -> None:
    db_url = empty_url
    incident_id = _seed(db_url)
    code, out = _cli("incidents", "list", "--open", url=db_url)
    assert code == 0 and incident_id in out and "contained" in out
    assert _cli("incidents", "ack", incident_id, "--as", "alice", url=db_url)[0] == 0
    assert _cli("incidents", "note", incident_id, "paused at block 102", "--as", "alice", url=db_url)[0] == 0
    code, out = _cli("incidents", "transition", incident_id, "closed", url=db_url)
    assert code == 1 and "closing needs a resolution" in out
    code, out = _cli("incidents", "transition", incident_id, "triaged", url=db_url)
    assert code == 1 and "cannot move contained -> triaged" in out
    code, out = _cli("incidents", "transition", incident_id, "recovered", "--as", "bob", url=db_url)
    assert code == 0 and "recovered" in out
    code, out = _cli("incidents", "show", incident_id, url=db_url)
    assert code == 0
    assert "commander: alice" in out and "paused at block 102" in out and "TTC 3.000 s" in out
    assert _cli("incidents", "show", "inc-nope", url=db_url)[0] == 1


def test_audit_verify_passes_then_names_the_row_edited_behind_its_back(empty_url: str) -> None:
    db_url = empty_url
    _seed(db_url)
    code, out = _cli("audit", "verify", url=db_url)
    assert code == 0 and "ok: 5 events verify" in out
    code, out = _cli("audit", "log", "--all", url=db_url)
    assert code == 0 and "responder:guard" in out and "transaction" in out

    async def tamper() -> None:
        store = Store(db_url)
        try:
            async with store.sessions.begin() as session:
                await session.execute(text("UPDATE timeline_events SET actor = 'nobody' WHERE seq = 4"))
        finally:
            await store.close()

    asyncio.run(tamper())
    code, out = _cli("audit", "verify", url=db_url)
    assert code == 1 and "TAMPERED" in out and "row 4: content does not match its hash" in out


def test_audit_verify_names_an_incident_whose_state_was_edited_and_says_what_it_does_not_cover(
    empty_url: str,
) -> None:
    db_url = empty_url
    incident_id = _seed(db_url)
    code, out = _cli("audit", "verify", url=db_url)
    assert code == 0 and "not covered: the rows of respond_ledger" in out

    async def tamper() -> None:
        store = Store(db_url)
        try:
            async with store.sessions.begin() as session:
                await session.execute(text("UPDATE incidents SET state = 'closed'"))
        finally:
            await store.close()

    asyncio.run(tamper())
    code, out = _cli("audit", "verify", url=db_url)
    assert code == 1 and f"incident {incident_id}: state 'closed'" in out


def test_report_writes_markdown_html_and_the_value_at_risk_plot(empty_url: str, tmp_path: Path) -> None:
    db_url = empty_url
    incident_id = _seed(db_url)
    assert _cli("incidents", "note", incident_id, "<script>alert(1)</script>", url=db_url)[0] == 0
    code, out = _cli("report", incident_id, "--out", str(tmp_path), url=db_url)
    assert code == 0, out
    markdown = (tmp_path / f"{incident_id}.md").read_text()
    html = (tmp_path / f"{incident_id}.html").read_text()
    png = (tmp_path / f"{incident_id}-value-at-risk.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5_000
    # Detected at block 100, contained at 102, three seconds later.
    assert "| time to contain | 3.000 s | 2 |" in markdown
    assert f"`{TX}`" in markdown and "`withdraw(uint256)`" in markdown
    assert f"]({incident_id}-value-at-risk.png)" in markdown
    assert "data:image/png;base64," in html and TX in html
    assert "<script" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # escaped


def test_report_takes_a_supplied_series(empty_url: str, tmp_path: Path) -> None:
    db_url = empty_url
    incident_id = _seed(db_url)
    series = tmp_path / "series.json"
    series.write_text(json.dumps([[99, 0], [100, 5], [101, 7]]))
    assert _cli("report", incident_id, "--out", str(tmp_path), "--series", str(series), url=db_url)[0] == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "pairs"}')
    code, out = _cli("report", incident_id, "--out", str(tmp_path), "--series", str(bad), url=db_url)
    assert code == 1 and "not a list of (block, value) pairs" in out

"""``breakglass test-monitor`` and ``breakglass watch --until`` on the probe protocol."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from detect_support import USD, Probe  # type: ignore[import-not-found]
from typer.testing import CliRunner

from breakglass.cli.main import app

pytestmark = pytest.mark.node


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI configures logging onto CliRunner's stream, which closes after each invocation."""
    yield
    structlog.reset_defaults()


MONITORS = (
    "  - {id: deposits, kind: event, contract: vault, event: Deposit, severity: low}\n"
    "  - {id: solvent, kind: invariant, calls: {a: vault.totalAssets(), l: vault.totalLiabilities()},"
    " expect: 'a >= l'}\n"
)


def config(tmp_path: Path) -> Path:
    path = tmp_path / "cli.yaml"
    path.write_text(
        f"deployment: manifest.json\nstore:\n  url: sqlite:///{tmp_path / 'cli.db'}\nmonitors:\n{MONITORS}",
        encoding="utf-8",
    )
    return path


def lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_test_monitor_evaluates_one_historical_block_with_its_state(probe: Probe, tmp_path: Path) -> None:
    probe.deposit(probe.users[0], 10 * USD)
    deposit_block = probe.w3.eth.block_number
    probe.send(probe.vault.functions.skim(probe.users[1], 1 * USD), probe.users[1])
    path = config(tmp_path)
    runner = CliRunner()
    at_deposit = runner.invoke(app, ["test-monitor", str(path), "--block", str(deposit_block), "--json"])
    assert at_deposit.exit_code == 0, at_deposit.output
    assert [f["monitor"] for f in lines(at_deposit.output)] == ["deposits"]  # still solvent then
    after = runner.invoke(app, ["test-monitor", str(path), "--block", str(deposit_block + 1), "--json"])
    assert [f["monitor"] for f in lines(after.output)] == ["solvent"]
    only = runner.invoke(app, ["test-monitor", str(path), "--block", str(deposit_block), "--monitor", "nope"])
    assert only.exit_code == 2 and "no monitor with id" in only.output


def test_watch_until_processes_the_range_and_prints_findings(probe: Probe, tmp_path: Path) -> None:
    first = probe.w3.eth.block_number + 1
    probe.deposit(probe.users[0], 3 * USD)
    last = probe.w3.eth.block_number
    result = CliRunner().invoke(
        app, ["watch", str(config(tmp_path)), "--from", str(first), "--until", str(last), "--json"]
    )
    assert result.exit_code == 0, result.output
    [finding] = lines(result.output)
    assert finding["monitor"] == "deposits" and finding["block"] == last

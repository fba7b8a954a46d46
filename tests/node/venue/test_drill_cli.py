"""``breakglass drill run|benign`` as a user runs them: a fresh devnet each, a table and JSON out."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from breakglass.cli.drill import app
from breakglass.logs import configure_logging

pytestmark = pytest.mark.node


@pytest.fixture(autouse=True)
def _logging_on_real_stderr() -> Iterator[None]:
    """``drill run|benign`` quiet the pipeline's logs on CliRunner's stream, closed when they return."""
    yield
    configure_logging(level="info", stream=sys.__stderr__)


@pytest.mark.slow
def test_drill_run_reports_the_loss_of_an_undefended_scenario(tmp_path: Path) -> None:
    out = tmp_path / "drill.json"
    result = CliRunner().invoke(
        app, ["run", "--scenario", "forwarder-oracle", "--no-defense", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "forwarder-oracle" in result.output
    (entry,) = json.loads(out.read_text())
    assert entry["defended"] is False and entry["loss_usd"] == entry["baseline_loss_usd"] > 1_000_000


def test_drill_run_names_the_modes_for_an_unknown_one() -> None:
    result = CliRunner().invoke(app, ["run", "--scenario", "forwarder-oracle", "--mode", "sideways"])
    assert result.exit_code == 1
    assert "public" in result.output and "private" in result.output


def test_drill_run_names_the_known_scenarios_for_an_unknown_one() -> None:
    result = CliRunner().invoke(app, ["run", "--scenario", "mango", "--no-defense"])
    assert result.exit_code == 1
    assert "spot-oracle-pump" in result.output


@pytest.mark.slow
def test_drill_benign_reports_blocks_transactions_and_reverts(tmp_path: Path) -> None:
    out = tmp_path / "benign.json"
    result = CliRunner().invoke(app, ["benign", "--blocks", "15", "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["blocks"] == 15 and report["reverts"] == 0 and report["transactions"] > 40


def test_drill_list_shows_every_scenario() -> None:
    result = CliRunner().invoke(app, ["list"], terminal_width=200)
    assert result.exit_code == 0
    for name in ("spot-oracle-pump", "forwarder-oracle", "reentrant-aum", "admin-takeover",
                 "donation-insolvency", "slow-squeeze", "repeated-drain"):  # fmt: skip
        assert name in result.output

"""Hard honest days with the shipped configuration defending (blocks and the public mempool): a crash and
a squeeze on crowded books, a bank run, a cap raise through the timelock, an aggregator settling epochs,
bots. No automatic action, no honest transaction reverted by a containment, no segment worse off
defended than undefended. Bounded here; ``breakglass drill hard-days`` plays the full run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from breakglass.cli.drill import app as drill_app
from breakglass.devnet.solc import Build
from breakglass.drills.benign.harddays import SEGMENTS, HardDayConfig
from breakglass.drills.hard_days import run_hard_days

pytestmark = [pytest.mark.node, pytest.mark.slow]


async def test_every_hard_honest_segment_passes_defended_by_the_shipped_configuration(
    build: Build, tmp_path: Path
) -> None:
    report = await run_hard_days(build, HardDayConfig.bounded(), workdir=tmp_path)
    by = {s.segment: s for s in report.segments}
    assert list(by) == list(SEGMENTS)
    for segment in report.segments:
        assert segment.actions == [], segment.to_json()
        assert segment.defended.ours == [] and segment.defended.other_reverts == [], segment.to_json()
        assert segment.containment_loss <= 0
        serious = {m for m, c in segment.alerts.items() if c.get("critical", 0)}
        assert not serious, (segment.segment, segment.alerts)
    assert report.passed
    # each segment did what it is there for
    assert by["crash"].defended.liquidations >= 1 and by["squeeze"].defended.liquidations >= 1
    assert by["crash"].stake_undefended > by["bots"].stake_undefended  # traders' losses: the LPs' gain
    assert by["bank-run"].defended.by_kind["redeem"] >= 20
    assert by["bank-run"].stake_undefended < by["bots"].stake_undefended * 0.85
    assert by["cap-raise"].defended.by_kind["timelock"] == 2 and by["cap-raise"].defended.by_kind["open"] >= 2
    assert by["zap-epoch"].defended.by_kind["settle"] == 2
    # the cap change was seen when it was scheduled, an hour before it executed
    assert by["cap-raise"].alerts.get("limit-change-scheduled", {}).get("info", 0) >= 2


def test_the_hard_days_command_reports_per_segment_and_exits_0(tmp_path: Path) -> None:
    # the command's plumbing (options, table, JSON, exit code); the defended run is the test above
    out = tmp_path / "hard.json"
    args = ["hard-days", "--bounded", "--segment", "zap-epoch", "--segment", "bots", "--no-defense",
            "--json", str(out)]  # fmt: skip
    result = CliRunner().invoke(drill_app, args, terminal_width=200)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["passed"] and not report["defended"]
    assert [s["segment"] for s in report["segments"]] == ["zap-epoch", "bots"]
    assert all(s["honest_transactions"] > 0 and s["reverted_by_containment"] == 0 for s in report["segments"])
    assert "zap-epoch" in result.output and "bots" in result.output
    bad = CliRunner().invoke(drill_app, ["hard-days", "--segment", "earthquake", "--no-defense"])
    assert bad.exit_code != 0 and "earthquake" in bad.output

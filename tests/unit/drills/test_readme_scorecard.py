"""The README's drill scorecard: tables rendered between markers from drill rows, read back, and a
rerun compared with them within the stated tolerances (pure functions; no drill is played)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from breakglass.cli.drill import app as drill_app
from breakglass.drills.readme import (
    ScorecardError,
    Tolerance,
    averages,
    compare,
    markers,
    median_rows,
    parse_section,
    published_section,
    render_section,
    replace_section,
)


def row(scenario: str, mode: str = "private", **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "scenario": scenario, "mode": mode, "defended": True, "baseline_loss_usd": 1_000_400.0,
        "loss_usd": 0.0, "preserved": 1.0, "ttd_ms": -665.2, "ttd_blocks": -3, "ttc_ms": 1302.0,
        "ttc_blocks": 7, "deploy_ttd_ms": 120.0, "deploy_ttd_blocks": 1, "deploy_ttc_ms": 900.5,
        "deploy_ttc_blocks": 4, "benign_blocks": 2, "alerts": 6,
        "actions": ["contain-market.pause-market", "contain-market.block-attacker (failed)"],
        "incident_id": "inc-1",
    }  # fmt: skip
    return {**base, **changes}


ROWS = [
    row("spot-oracle-pump"),
    row("donation-insolvency", baseline_loss_usd=6_317_960.0, loss_usd=1_295_980.0, preserved=0.7949),
    row("spot-oracle-pump", "public"),
]


def readme(rows: list[dict[str, Any]] = ROWS) -> str:
    text = "# title\n\nprose\n\n"
    for mode in ("private", "public"):
        start, end = markers(mode)
        text += f"{start}\nold table\n{end}\n\nmore prose\n"
    for mode in ("private", "public"):
        text = replace_section(text, mode, render_section(mode, rows, "Measured by a test."))
    return text


def test_rewriting_a_section_replaces_only_what_lies_between_its_markers() -> None:
    text = readme()
    assert text.startswith("# title\n\nprose\n\n<!-- scorecard:private:start -->\n| scenario |")
    assert "old table" not in text and text.count("more prose") == 2
    assert readme() == replace_section(
        text, "private", render_section("private", ROWS, "Measured by a test.")
    )


def test_the_private_table_has_the_times_from_the_deployment_and_the_average_line() -> None:
    section = render_section("private", ROWS)
    assert "| deploy to finding ms (blocks) | deploy to containment ms (blocks) |" in section
    assert (
        "| spot-oracle-pump | 1,000,400 | 0 | 100.0% | -665 (-3) | 1,302 (7) | 120 (1) | 900 (4) | 2 | 6 |"
        in (section)
    )
    assert "Average preserved: 89.7% (private); lowest: donation-insolvency 79.5%." in section
    # only confirmed actions are listed; the public table has no deployment columns
    assert "block-attacker" not in section
    assert "deploy to" not in render_section("public", ROWS)
    assert "Average preserved: 100.0% (public); every scenario 100.0%." in render_section("public", ROWS)


def test_a_missing_marker_is_an_error_naming_it() -> None:
    with pytest.raises(ScorecardError, match="scorecard:public:start"):
        replace_section("no markers here", "public", "table")


def test_a_rendered_section_reads_back_as_it_was_written() -> None:
    rows, average = parse_section(published_section(readme(), "private"))
    assert set(rows) == {"spot-oracle-pump", "donation-insolvency"} and average == pytest.approx(89.7)
    assert rows["donation-insolvency"]["preserved"] == "79.5%"
    assert rows["spot-oracle-pump"]["deploy to containment ms (blocks)"] == "900 (4)"


def test_a_rerun_within_the_tolerances_is_no_drift() -> None:
    rerun = [
        row("spot-oracle-pump", ttd_ms=-2_000.0, ttc_blocks=9, deploy_ttc_ms=4_000.0),  # ms noisy, blocks +2
        row("donation-insolvency", baseline_loss_usd=6_400_000.0, loss_usd=1_400_000.0, preserved=0.7812),
        row("spot-oracle-pump", "public"),
    ]
    assert compare(readme(), rerun, Tolerance()) == []


def test_a_long_containment_time_may_move_by_five_percent_of_its_blocks() -> None:
    published = readme([row("slow-squeeze", ttc_ms=6_097.0, ttc_blocks=215)])
    assert (
        compare(published, [row("slow-squeeze", ttc_ms=7_375.0, ttc_blocks=205)], Tolerance(), ["private"])
        == []
    )
    (drift,) = compare(published, [row("slow-squeeze", ttc_blocks=203)], Tolerance(), ["private"])
    assert drift.column == "TTC ms (blocks)" and drift.allowed == "±11 blocks"


def test_anything_lost_where_nothing_was_is_a_drift_however_small() -> None:
    rerun = [row("spot-oracle-pump", loss_usd=5_000.0, preserved=0.995), *ROWS[1:]]
    drifts = compare(readme(), rerun, Tolerance())
    assert [(d.scenario, d.column, d.published, d.measured) for d in drifts] == [
        ("spot-oracle-pump", "preserved", "100.0%", "99.5%")
    ]
    assert "exactly 100.0%" in str(drifts[0])


def test_partial_preservation_blocks_and_ms_drift_past_their_bands() -> None:
    rerun = [
        row("spot-oracle-pump", ttc_blocks=11, deploy_ttd_ms=9_000.0, deploy_ttd_blocks=None),
        row("donation-insolvency", baseline_loss_usd=6_317_960.0, loss_usd=2_500_000.0, preserved=0.6043),
        row("spot-oracle-pump", "public", ttd_ms=None, ttd_blocks=None),
    ]
    found = {(d.mode, d.scenario, d.column) for d in compare(readme(), rerun, Tolerance())}
    assert found == {
        ("private", "spot-oracle-pump", "TTC ms (blocks)"),  # 7 -> 11 blocks
        ("private", "spot-oracle-pump", "deploy to finding ms (blocks)"),  # blocks no longer measured
        ("private", "donation-insolvency", "preserved"),  # 79.5% -> 60.4%
        ("private", "average", "preserved"),  # 89.7% -> 80.2%
        ("public", "spot-oracle-pump", "TTD ms (blocks)"),  # detected before, not now
    }


def test_a_moved_baseline_and_a_scenario_run_but_not_published_are_drifts() -> None:
    rerun = [row("spot-oracle-pump", baseline_loss_usd=0.0), *ROWS[1:], row("new-scenario")]
    found = {(d.scenario, d.column) for d in compare(readme(), rerun, Tolerance(), ["private"])}
    assert ("spot-oracle-pump", "baseline loss USD") in found and ("new-scenario", "scenario") in found


def test_a_published_scenario_not_rerun_is_a_drift() -> None:
    drifts = compare(readme(), ROWS[:1] + ROWS[2:], Tolerance(), ["private"])
    assert ("donation-insolvency", "not run") in {(d.scenario, d.measured) for d in drifts}


def test_averages_leave_out_undefended_and_faulted_drills() -> None:
    rows = [*ROWS, row("x", preserved=0.0, fault="reorg"), row("y", preserved=0.0, defended=False)]
    assert averages(rows) == {"private": pytest.approx(89.745), "public": 100.0}


def test_the_command_rewrites_then_checks_a_readme_from_saved_results(tmp_path: Path) -> None:
    results, target = tmp_path / "drills.json", tmp_path / "README.md"
    results.write_text(json.dumps(ROWS), encoding="utf-8")
    target.write_text(readme([]), encoding="utf-8")
    wrote = CliRunner().invoke(drill_app, ["scorecard", "--results", str(results), "--write", str(target)])
    assert wrote.exit_code == 0, wrote.output
    written = target.read_text(encoding="utf-8")
    assert "| donation-insolvency | 6,317,960 | 1,295,980 | 79.5% |" in written
    assert "UTC by `breakglass drill run --json`." in written  # where the figures came from
    same = CliRunner().invoke(drill_app, ["scorecard", "--results", str(results), "--check", str(target)])
    assert same.exit_code == 0 and "no drift" in same.output, same.output
    worse = [row("spot-oracle-pump", loss_usd=100_000.0, preserved=0.9), *ROWS[1:]]
    results.write_text(json.dumps({"drills": worse}), encoding="utf-8")
    report = tmp_path / "check.json"
    args = ["scorecard", "--results", str(results), "--check", str(target), "--json", str(report)]
    drifted = CliRunner().invoke(drill_app, args, terminal_width=200)
    assert drifted.exit_code == 1 and "spot-oracle-pump: preserved published 100.0%" in drifted.output
    assert json.loads(report.read_text(encoding="utf-8"))["drifts"]


def test_a_scenario_played_once_keeps_its_row_as_it_was() -> None:
    assert median_rows(ROWS) == ROWS
    assert "median" not in render_section("private", median_rows(ROWS))


def test_three_plays_of_a_scenario_publish_the_median_of_each_figure() -> None:
    """A race decided by a few hundred ms: two plays of three preserve everything, one nothing. The
    published figure is what it usually does (100%), the plays beside it."""
    plays = [
        row("reentrant-aum", loss_usd=0.0, preserved=1.0, ttc_ms=250.0, ttc_blocks=1, alerts=5),
        row("reentrant-aum", loss_usd=1_000_400.0, preserved=0.0, ttc_ms=900.0, ttc_blocks=4, alerts=7),
        row("reentrant-aum", loss_usd=0.0, preserved=1.0, ttc_ms=300.0, ttc_blocks=2, alerts=6),
        row("spot-oracle-pump"),
    ]
    [aum, pump] = median_rows(plays)
    assert aum["preserved"] == 1.0 and aum["loss_usd"] == 0.0
    assert aum["ttc_ms"] == 300.0 and aum["ttc_blocks"] == 2
    assert aum["runs"] == 3 and aum["preserved_runs"] == [1.0, 0.0, 1.0]
    assert aum["alerts"] in (5, 6)  # a real play's counts (a median play's), not a blend
    assert pump == plays[3]  # played once: unchanged
    section = render_section("private", [aum, pump])
    assert "| reentrant-aum | 1,000,400 | 0 | 100.0% |" in section
    assert "median of 1 or 3 plays" in section and "reentrant-aum 100.0/0.0/100.0%" in section


def test_an_even_number_of_plays_averages_the_middle_two_and_blocks_stay_counts() -> None:
    plays = [
        row("donation-insolvency", preserved=p, loss_usd=loss, ttd_blocks=b, ttd_ms=None)
        for p, loss, b in ((0.8, 200.0, 3), (0.6, 400.0, 5), (0.9, 100.0, 2), (0.7, 300.0, 4))
    ]
    [median] = median_rows(plays)
    assert median["preserved"] == 0.75 and median["loss_usd"] == 250.0
    assert median["ttd_blocks"] == 3  # the lower median: a count some play measured
    assert median["ttd_ms"] is None  # measured by none
    assert median["runs"] == 4


def test_plays_are_grouped_by_mode_and_fault_too() -> None:
    plays = [row("spot-oracle-pump"), row("spot-oracle-pump", "public"), row("spot-oracle-pump")]
    plays.append(row("spot-oracle-pump", fault="reorg", preserved=0.5))
    medians = median_rows(plays)
    assert [(r["mode"], r.get("fault"), r.get("runs", 1)) for r in medians] == [
        ("private", None, 2),
        ("public", None, 1),
        ("private", "reorg", 1),
    ]


def test_the_command_publishes_medians_from_saved_plays(tmp_path: Path) -> None:
    """``drill scorecard --runs N --json`` keeps every play; read back with --results, the medians are
    made again from them."""
    plays = [row("reentrant-aum", preserved=p, loss_usd=(1 - p) * 1_000_400.0) for p in (1.0, 0.0, 1.0)]
    results, target = tmp_path / "scorecard.json", tmp_path / "README.md"
    results.write_text(json.dumps({"drills": median_rows(plays), "plays": plays}), encoding="utf-8")
    target.write_text(readme([]), encoding="utf-8")
    args = ["scorecard", "--mode", "private", "--results", str(results), "--write", str(target)]
    wrote = CliRunner().invoke(drill_app, args)
    assert wrote.exit_code == 0, wrote.output
    written = target.read_text(encoding="utf-8")
    assert "| reentrant-aum | 1,000,400 | 0 | 100.0% |" in written
    assert "median of 3 plays" in written


def test_runs_must_be_at_least_one() -> None:
    result = CliRunner().invoke(drill_app, ["scorecard", "--runs", "0"])
    assert result.exit_code != 0

"""The README's drill scorecard: tables rendered from drill results (the rows ``drill run --json``
writes) between explicit markers, read back, and compared with a new run within stated tolerances.

Pure functions: ``breakglass drill scorecard`` and ``benchmarks.scorecard`` run the drills and call them.
With ``--runs N`` each scenario is played N times and ``median_rows`` makes one row of them: every
figure the median of the N plays (a race decided by a few hundred ms is published as what it usually
does, not as one draw), the plays' preserved fractions kept beside it (``preserved_runs``).

    <!-- scorecard:private:start -->
    ...table and average line, rewritten by the command...
    <!-- scorecard:private:end -->
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from breakglass.errors import BreakglassError

__all__ = [
    "MODES",
    "Drift",
    "ScorecardError",
    "Tolerance",
    "averages",
    "compare",
    "markers",
    "measured_note",
    "median_rows",
    "parse_section",
    "published_section",
    "render_section",
    "replace_section",
]

MODES = ("private", "public")
AVERAGE = re.compile(r"Average preserved:\s*(-?[\d.]+)%")
MS_BLOCKS = re.compile(r"^(-?[\d,]+(?:\.\d+)?)(?:\s*\((-?\d+)\))?$")

Row = Mapping[str, Any]
"""One drill as ``DrillResult.to_json`` writes it."""


class ScorecardError(BreakglassError):
    """The README has no scorecard section for a mode (or a broken one)."""


def markers(mode: str) -> tuple[str, str]:
    return f"<!-- scorecard:{mode}:start -->", f"<!-- scorecard:{mode}:end -->"


def _columns(mode: str) -> list[str]:
    columns = ["scenario", "baseline loss USD", "loss USD", "preserved", "TTD ms (blocks)", "TTC ms (blocks)"]
    if mode == "private":  # no mempool window: the time from the attack contract's deployment counts
        columns += ["deploy to finding ms (blocks)", "deploy to containment ms (blocks)"]
    return [*columns, "honest blocks", "alerts", "actions confirmed"]


def _usd(value: float) -> str:
    return f"{value:,.0f}"


def _ms_blocks(ms: float | None, blocks: int | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:,.0f}" + ("" if blocks is None else f" ({blocks})")


def _preserved(row: Row) -> float:
    return 100 * float(row["preserved"])


def _cells(row: Row, mode: str) -> list[str]:
    cells = [
        str(row["scenario"]),
        _usd(row["baseline_loss_usd"]),
        _usd(row["loss_usd"]),
        f"{_preserved(row):.1f}%",
        _ms_blocks(row.get("ttd_ms"), row.get("ttd_blocks")),
        _ms_blocks(row.get("ttc_ms"), row.get("ttc_blocks")),
    ]
    if mode == "private":
        cells += [
            _ms_blocks(row.get("deploy_ttd_ms"), row.get("deploy_ttd_blocks")),
            _ms_blocks(row.get("deploy_ttc_ms"), row.get("deploy_ttc_blocks")),
        ]
    confirmed = [a for a in row.get("actions", []) if "(" not in a]
    return [*cells, str(row.get("benign_blocks", 0)), str(row.get("alerts", 0)), ", ".join(confirmed) or "-"]


def averages(rows: Sequence[Row]) -> dict[str, float]:
    """Average preserved % per mode, over defended drills without a fault."""
    by_mode: dict[str, list[float]] = {}
    for row in rows:
        if row.get("defended", True) and not row.get("fault"):
            by_mode.setdefault(str(row["mode"]), []).append(_preserved(row))
    return {mode: sum(values) / len(values) for mode, values in by_mode.items()}


_MEDIAN_MS = ("ttd_ms", "ttc_ms", "deploy_ttd_ms", "deploy_ttc_ms")
_MEDIAN_BLOCKS = ("ttd_blocks", "ttc_blocks", "deploy_ttd_blocks", "deploy_ttc_blocks")


def median_rows(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """One row per (mode, scenario, fault), in first-seen order: a scenario played once keeps its row;
    one played N times gets the median of each figure over its plays (preserved, losses and ms:
    ``statistics.median``, the mean of the middle two for an even N; blocks: the lower median, a
    count some play measured; a time none measured stays None), ``runs`` = N and ``preserved_runs``
    (each play's, in play order). Counts, actions and the incident are those of the play whose
    preserved is the lower median (a real play, not a blend)."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for row in rows:
        group = (str(row["mode"]), str(row["scenario"]), str(row.get("fault") or ""))
        groups.setdefault(group, []).append(row)
    out: list[dict[str, Any]] = []
    for plays in groups.values():
        if len(plays) == 1:
            out.append(dict(plays[0]))
            continue
        by_preserved = sorted(plays, key=lambda r: float(r["preserved"]))
        middle = dict(by_preserved[(len(plays) - 1) // 2])
        for key in ("preserved", "loss_usd", "baseline_loss_usd"):
            middle[key] = round(
                statistics.median(float(r[key]) for r in plays), 4 if key == "preserved" else 2
            )
        for key in _MEDIAN_MS:
            values = [float(r[key]) for r in plays if r.get(key) is not None]
            middle[key] = round(statistics.median(values), 1) if values else None
        for key in _MEDIAN_BLOCKS:
            counts = [int(r[key]) for r in plays if r.get(key) is not None]
            middle[key] = statistics.median_low(counts) if counts else None
        middle["runs"] = len(plays)
        middle["preserved_runs"] = [float(r["preserved"]) for r in plays]
        out.append(middle)
    return out


def _runs_line(rows: Sequence[Row]) -> str:
    """Under a table of medians: how many plays, and the scenarios whose plays differed."""
    runs = sorted({int(r.get("runs", 1)) for r in rows})
    if runs == [1]:
        return ""
    spread = [
        f"{r['scenario']} " + "/".join(f"{100 * p:.1f}" for p in r["preserved_runs"]) + "%"
        for r in rows
        if len({round(p, 3) for p in r.get("preserved_runs", ())}) > 1
    ]
    plays = " or ".join(str(n) for n in runs)
    line = f"Each figure is the median of {plays} plays of its scenario"
    return line + ("; preserved per play: " + ", ".join(spread) + "." if spread else "; every play alike.")


def measured_note(command: str, when: str, seconds: float | None, load: float | None) -> str:
    """The line under a table: when, by which command, how long, on how busy a machine."""
    how = [] if seconds is None else [f"{seconds:,.0f} s for the whole run"]
    how += [] if load is None else [f"load average {load:.1f} at its start"]
    return f"Measured {when} by `{command}`" + (f" ({', '.join(how)})." if how else ".")


def render_section(mode: str, rows: Sequence[Row], note: str = "") -> str:
    """The table of ``mode``'s rows, its average and lowest preserved, and ``note`` (when and how it
    was measured) under it."""
    mine = [r for r in rows if str(r["mode"]) == mode and not r.get("fault")]
    columns = _columns(mode)
    right = {c for c in columns if c not in ("scenario", "actions confirmed")}
    lines = [
        "| " + " | ".join(columns) + " |",
        "| " + " | ".join("---:" if c in right else "---" for c in columns) + " |",
    ]
    lines += ["| " + " | ".join(_cells(r, mode)) + " |" for r in mine]
    if mine:
        average = averages(mine)[mode]
        lowest = min(mine, key=_preserved)
        low = (
            f"lowest: {lowest['scenario']} {_preserved(lowest):.1f}%"
            if round(_preserved(lowest), 1) < 100.0
            else "every scenario 100.0%"
        )
        lines += ["", f"Average preserved: {average:.1f}% ({mode}); {low}."]
        if runs := _runs_line(mine):
            lines += ["", runs]
    if note:
        lines += ["", note]
    return "\n".join(lines)


def replace_section(text: str, mode: str, section: str) -> str:
    """``text`` with what lies between ``mode``'s markers replaced by ``section``."""
    start, end = markers(mode)
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ScorecardError(f"no '{start}' ... '{end}' section in the README")
    return text[: i + len(start)] + "\n" + section.strip("\n") + "\n" + text[j:]


def published_section(text: str, mode: str) -> str:
    start, end = markers(mode)
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        raise ScorecardError(f"no '{start}' ... '{end}' section in the README")
    return text[i + len(start) : j]


def _split(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_section(section: str) -> tuple[dict[str, dict[str, str]], float | None]:
    """The published rows (scenario -> column -> cell text) and the average preserved %."""
    table = [line for line in section.splitlines() if line.strip().startswith("|")]
    rows: dict[str, dict[str, str]] = {}
    if len(table) >= 2:
        header = _split(table[0])
        for line in table[2:]:
            cells = _split(line)
            rows[cells[0]] = dict(zip(header, cells, strict=False))
    match = AVERAGE.search(section)
    return rows, float(match.group(1)) if match else None


def _number(cell: str) -> float | None:
    text = cell.strip().rstrip("%").replace(",", "")
    if text in ("", "-"):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _pair(cell: str) -> tuple[float | None, int | None]:
    match = MS_BLOCKS.match(cell.strip())
    if not match:
        return None, None
    blocks = match.group(2)
    return float(match.group(1).replace(",", "")), int(blocks) if blocks is not None else None


@dataclass(frozen=True)
class Tolerance:
    """How far a rerun may move a published figure before ``--check`` fails."""

    preserved_pp: float = 5.0
    """Percentage points for a partly preserved drill and for the average; a published 100.0% (nothing
    lost) must stay exactly 100.0%."""
    baseline_relative: float = 0.05
    """Undefended loss, relative (the baseline is fast-forwarded and seeded, so it should barely move)."""
    blocks: int = 3
    blocks_relative: float = 0.05
    """TTD/TTC blocks (and from the deployment): max(``blocks``, ``blocks_relative`` x |published|)
    (slow-squeeze's containment, ~215 blocks after its strike, moves by one 5-block attacker wait)."""
    ms_floor: float = 5_000.0
    ms_relative: float = 1.0
    """ms are the machine's load as much as the defense's: a drift is flagged only past
    max(``ms_floor``, ``ms_relative`` x |published|)."""

    def to_json(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class Drift:
    mode: str
    scenario: str
    column: str
    published: str
    measured: str
    allowed: str

    def __str__(self) -> str:
        return (
            f"{self.mode} {self.scenario}: {self.column} published {self.published}, "
            f"measured {self.measured} (allowed: {self.allowed})"
        )


def _compare_preserved(published: float | None, measured: float, tol: Tolerance) -> str | None:
    """None when within tolerance, else what was allowed."""
    if published is None:
        return "a figure"
    if published >= 100.0:
        return None if round(measured, 1) >= 100.0 else "exactly 100.0%"
    return None if abs(measured - published) <= tol.preserved_pp else f"±{tol.preserved_pp} pp"


def _timing_columns(mode: str) -> list[tuple[str, str, str]]:
    columns = [("TTD ms (blocks)", "ttd_ms", "ttd_blocks"), ("TTC ms (blocks)", "ttc_ms", "ttc_blocks")]
    if mode == "private":
        columns += [
            ("deploy to finding ms (blocks)", "deploy_ttd_ms", "deploy_ttd_blocks"),
            ("deploy to containment ms (blocks)", "deploy_ttc_ms", "deploy_ttc_blocks"),
        ]
    return columns


def _compare_row(mode: str, cells: dict[str, str], row: Row, tol: Tolerance) -> list[Drift]:
    name, drifts = str(row["scenario"]), []

    def drift(column: str, measured: str, allowed: str) -> None:
        drifts.append(Drift(mode, name, column, cells.get(column, "(missing)"), measured, allowed))

    measured_preserved = _preserved(row)
    allowed = _compare_preserved(_number(cells.get("preserved", "")), measured_preserved, tol)
    if allowed:
        drift("preserved", f"{measured_preserved:.1f}%", allowed)
    baseline = _number(cells.get("baseline loss USD", ""))
    measured_baseline = float(row["baseline_loss_usd"])
    band = tol.baseline_relative * max(abs(baseline or 0.0), 1.0)
    if baseline is None or abs(measured_baseline - baseline) > band:
        drift("baseline loss USD", _usd(measured_baseline), f"±{100 * tol.baseline_relative:.0f}%")
    for column, ms_key, blocks_key in _timing_columns(mode):
        ms, blocks = _pair(cells.get(column, ""))
        new_ms, new_blocks = row.get(ms_key), row.get(blocks_key)
        shown = _ms_blocks(new_ms, new_blocks)
        if (ms is None) != (new_ms is None):
            drift(column, shown, "measured in both or in neither")
            continue
        band_blocks = max(tol.blocks, round(tol.blocks_relative * abs(blocks or 0)))
        if blocks is not None and new_blocks is not None and abs(new_blocks - blocks) > band_blocks:
            drift(column, shown, f"±{band_blocks} blocks")
        elif (blocks is None) != (new_blocks is None):
            drift(column, shown, "blocks measured in both or in neither")
        elif ms is not None and new_ms is not None:
            band_ms = max(tol.ms_floor, tol.ms_relative * abs(ms))
            if abs(float(new_ms) - ms) > band_ms:
                drift(column, shown, f"±{band_ms:,.0f} ms")
    honest = cells.get("honest blocks")
    if honest is not None and honest != str(row.get("benign_blocks", 0)):
        drift("honest blocks", str(row.get("benign_blocks", 0)), "the same")
    return drifts


def compare(
    published_text: str, rows: Sequence[Row], tol: Tolerance, modes: Sequence[str] = MODES
) -> list[Drift]:
    """Every figure of ``published_text``'s scorecard sections that ``rows`` (a rerun) moved past ``tol``;
    a scenario published but not rerun, or rerun but not published, is a drift too."""
    drifts: list[Drift] = []
    for mode in modes:
        published, average = parse_section(published_section(published_text, mode))
        mine = [r for r in rows if str(r["mode"]) == mode and not r.get("fault")]
        measured = {str(r["scenario"]): r for r in mine}
        for name in published.keys() - measured.keys():
            drifts.append(Drift(mode, name, "scenario", "published", "not run", "every published scenario"))
        for name in measured.keys() - published.keys():
            drifts.append(
                Drift(mode, name, "scenario", "not published", "run", "every run scenario published")
            )
        for name, row in measured.items():
            if name in published:
                drifts += _compare_row(mode, published[name], row, tol)
        if mine:
            new_average = averages(mine)[mode]
            allowed = _compare_preserved(average, new_average, tol)
            if allowed:
                shown = "(missing)" if average is None else f"{average:.1f}%"
                drifts.append(Drift(mode, "average", "preserved", shown, f"{new_average:.1f}%", allowed))
    return drifts

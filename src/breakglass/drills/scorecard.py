"""The drill scorecard: a Rich table for the terminal; Markdown and HTML files with, per drill, a plot of
the value at risk over the blocks after the first exploit transaction, with and without defense,
detection and containment marked."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rich.table import Table

from breakglass.drills.runner import DrillResult

__all__ = ["ScorecardFiles", "card", "plot_png", "rich_table", "rows", "to_markdown", "write_scorecard"]

COLUMNS = (
    "scenario", "mode", "fault", "baseline loss USD", "loss USD", "preserved",
    "TTD ms", "TTD blocks", "TTC ms", "TTC blocks", "deploy->TTD ms (blocks)", "deploy->TTC ms (blocks)",
    "alerts", "actions", "incident",
)  # fmt: skip


def _num(value: float | int | None, fmt: str = "{:,.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def _ms_blocks(ms: float | None, blocks: int | None) -> str:
    """``1,234 (5)``: ms and blocks in one cell; ``-`` when not measured."""
    if ms is None:
        return "-"
    return f"{ms:,.0f}" + ("" if blocks is None else f" ({blocks})")


def rows(results: Sequence[DrillResult]) -> list[list[str]]:
    """One row of text per drill, in ``COLUMNS`` order."""
    out = []
    for r in results:
        out.append([
            r.scenario, str(r.mode), r.fault or "-", _num(r.baseline_loss_usd), _num(r.loss_usd),
            f"{100 * r.preserved:.1f}%" if r.defended else "-",
            _num(r.ttd_ms), _num(r.ttd_blocks, "{}"), _num(r.ttc_ms), _num(r.ttc_blocks, "{}"),
            _ms_blocks(r.deploy_ttd_ms, r.deploy_ttd_blocks),
            _ms_blocks(r.deploy_ttc_ms, r.deploy_ttc_blocks),
            str(r.alerts), ", ".join(a for a in r.actions if "(" not in a) or "-", r.incident_id or "-",
        ])  # fmt: skip
    return out


def summary(results: Sequence[DrillResult]) -> dict[str, float]:
    """Average capital preserved per mode, over defended drills without a fault."""
    by_mode: dict[str, list[float]] = {}
    for r in results:
        if r.defended and not r.fault:
            by_mode.setdefault(str(r.mode), []).append(r.preserved)
    return {mode: sum(v) / len(v) for mode, v in by_mode.items()}


def rich_table(results: Sequence[DrillResult], title: str = "drill scorecard") -> Table:
    table = Table(title=title)
    for column in COLUMNS:
        left = column in ("scenario", "mode", "fault", "actions", "incident")
        table.add_column(column, justify="left" if left else "right", no_wrap=column == "scenario")
    for row in rows(results):
        table.add_row(*row)
    averages = summary(results)
    if averages:
        table.caption = "average preserved: " + ", ".join(f"{m} {100 * v:.1f}%" for m, v in averages.items())
    return table


def card(result: DrillResult, title: str = "scorecard") -> Table:
    """One drill as a two-column table (fits a narrow terminal)."""
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("value", overflow="fold")
    for column, value in zip(COLUMNS, rows([result])[0], strict=True):
        table.add_row(column, value)
    return table


def plot_png(result: DrillResult) -> bytes | None:
    """Value at risk (USD) over blocks after the first exploit transaction; None without data."""
    if not result.baseline_series:
        return None
    figure = Figure(figsize=(7, 3), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    bx, by = zip(*result.baseline_series, strict=True)
    ax.step(bx, [v / 1e6 for v in by], where="post", color="#c0392b", label="without defense")
    if result.defended and result.series:
        dx, dy = zip(*result.series, strict=True)
        ax.step(dx, [v / 1e6 for v in dy], where="post", color="#27ae60", label="with breakglass")
    if result.ttd_blocks is not None:
        ax.axvline(result.ttd_blocks, color="#f39c12", linestyle="--", label="detected")
    if result.ttc_blocks is not None:
        ax.axvline(result.ttc_blocks, color="#2980b9", linestyle=":", label="contained")
    ax.set_xlabel("blocks after the first exploit transaction")
    ax.set_ylabel("value at risk (M USD)")
    ax.set_title(f"{result.scenario} ({result.mode}{', ' + result.fault if result.fault else ''})")
    ax.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _name(result: DrillResult) -> str:
    return f"{result.scenario}-{result.mode}" + (f"-{result.fault}" if result.fault else "")


def to_markdown(results: Sequence[DrillResult], plots: dict[str, str] | None = None) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows(results)]
    averages = summary(results)
    if averages:
        lines += [
            "",
            "Average capital preserved: " + ", ".join(f"{m} {100 * v:.1f}%" for m, v in averages.items()),
        ]
    for result in results:
        plot = (plots or {}).get(_name(result))
        if plot:
            lines += ["", f"![{_name(result)}]({plot})"]
    return "\n".join(lines) + "\n"


def to_html(results: Sequence[DrillResult], pngs: dict[str, bytes]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in rows(results)
    )
    images = "".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(png).decode()}"></figure>'
        for name, png in pngs.items()
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>breakglass drill scorecard</title>"
        "<style>body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:3px 6px}"
        "table{border-collapse:collapse}</style></head><body><h1>breakglass drill scorecard</h1>"
        f"<table><tr>{head}</tr>{body}</table>{images}</body></html>"
    )


@dataclass(frozen=True)
class ScorecardFiles:
    markdown: Path
    html: Path
    plots: list[Path]


def write_scorecard(results: Sequence[DrillResult], out_dir: Path) -> ScorecardFiles:
    """``scorecard.md`` (plots beside it as PNG files) and a self-contained ``scorecard.html``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pngs: dict[str, bytes] = {}
    for result in results:
        png = plot_png(result)
        if png is not None:
            pngs[_name(result)] = png
    plots = []
    for name, png in pngs.items():
        path = out_dir / f"{name}.png"
        path.write_bytes(png)
        plots.append(path)
    markdown = out_dir / "scorecard.md"
    markdown.write_text(to_markdown(results, {n: f"{n}.png" for n in pngs}), encoding="utf-8")
    page = out_dir / "scorecard.html"
    page.write_text(to_html(results, pngs), encoding="utf-8")
    return ScorecardFiles(markdown, page, plots)

"""Post-mortem reports: an incident's metrics, timeline, evidence and value-at-risk plot, written as
Markdown and HTML (``breakglass report INCIDENT``).

Everything comes from the store (the timeline is the source of truth); the value-at-risk series comes
from the findings' evidence (``value_at_risk`` at their block) unless the caller supplies one. The
plot uses matplotlib's Agg canvas directly: no pyplot global state, no display needed.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, StrictUndefined, select_autoescape
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from sqlalchemy.ext.asyncio import AsyncSession

from breakglass.domain import Severity
from breakglass.incidents.metrics import (
    IncidentMetrics,
    format_duration,
    format_time,
    incident_metrics,
)
from breakglass.incidents.models import Incident, Participant, Task, Transition
from breakglass.incidents.service import IncidentService
from breakglass.timeline import TimelineEntry, TimelineKind

__all__ = ["Evidence", "ReportData", "ReportFiles", "Series", "gather", "plot_png", "render_html",
           "render_markdown", "series_from_timeline", "summarize", "write_report"]  # fmt: skip

Series = list[tuple[int, float]]

MARKDOWN = """\
# Post-mortem: {{ i.title }}

Incident `{{ i.id }}` · protocol **{{ i.protocol }}** · severity **{{ i.severity | severity }}** ·
state **{{ i.state }}**{% if i.resolution %} · resolution **{{ i.resolution }}**{% endif %}

Generated {{ generated }} from the incident timeline ({{ data.timeline | length }} events).

## Metrics

| metric | time | blocks |
| --- | --- | --- |
| time to detect | {{ m.ttd_ms | duration }} | {{ m.ttd_blocks | dash }} |
| time to contain | {{ m.ttc_ms | duration }} | {{ m.ttc_blocks | dash }} |
| time to recover | {{ m.ttr_ms | duration }} | |

| moment | when | block |
| --- | --- | --- |
| onset | {{ i.onset_at | when }} | {{ i.first_block | dash }} |
| detected | {{ i.detected_at | when }} | {{ i.detected_block | dash }} |
| contained | {{ i.contained_at | when }} | {{ i.contained_block | dash }} |
| recovered | {{ i.recovered_at | when }} | |
| closed | {{ i.closed_at | when }} | |

{% if plot %}
## Value at risk

![value at risk over blocks]({{ plot }})

{% endif %}
## Evidence

{% if data.evidence %}
| kind | block | transaction | source | call |
| --- | --- | --- | --- | --- |
{% for e in data.evidence %}
| {{ e.kind }} | {{ e.block | dash }} | `{{ e.tx_hash }}` | {{ e.source }} | `{{ e.call }}` |
{% endfor %}
{% else %}
No transactions recorded.
{% endif %}

## People and tasks

{% for p in data.participants %}
- {{ p.name }}: {{ p.role }}
{% else %}
- nobody was assigned
{% endfor %}
{% for t in data.tasks %}
- [{{ "x" if t.status == "done" else " " }}] {{ t.title }} ({{ t.kind }}, {{ t.status }}\
{% if t.due_at %}, due {{ t.due_at | when }}{% endif %})
{% endfor %}

## Timeline

| # | when | kind | who | what |
| --- | --- | --- | --- | --- |
{% for e in data.timeline %}
| {{ e.seq }} | {{ e.at | when }} | {{ e.kind.value }} | {{ e.actor }} | {{ e | summary }} |
{% endfor %}
"""


@dataclass(frozen=True, slots=True)
class Evidence:
    """One transaction the post-mortem points at: what it was and what it called."""

    kind: str
    block: int | None
    tx_hash: str
    source: str
    call: str
    detail: str


@dataclass
class ReportData:
    incident: Incident
    metrics: IncidentMetrics
    transitions: list[Transition]
    participants: list[Participant]
    tasks: list[Task]
    timeline: list[TimelineEntry]
    evidence: list[Evidence] = field(default_factory=list)
    series: Series = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReportFiles:
    markdown: Path
    html: Path
    plot: Path | None


def series_from_timeline(timeline: Sequence[TimelineEntry]) -> Series:
    """(block, value at risk) from findings whose evidence carries ``value_at_risk``; last per block."""
    points: dict[int, float] = {}
    for entry in timeline:
        if entry.kind is TimelineKind.FINDING and "evidence" in entry.data:
            value = entry.data["evidence"].get("value_at_risk")
            block = entry.data.get("block_number")
            if isinstance(value, int | float | str) and block is not None:
                try:
                    points[int(block)] = float(value)
                except ValueError:
                    continue
    return sorted(points.items())


def _evidence(timeline: Sequence[TimelineEntry]) -> list[Evidence]:
    found: list[Evidence] = []
    seen: set[tuple[str, str]] = set()
    for e in timeline:
        d = e.data
        tx = d.get("tx_hash")
        if not tx or e.kind not in (TimelineKind.FINDING, TimelineKind.TRANSACTION, TimelineKind.ACTION):
            continue
        step = str(d.get("step", "finding"))
        if (tx, step) in seen:
            continue
        seen.add((tx, step))
        if e.kind is TimelineKind.FINDING:
            ev = d.get("evidence", {})
            call = str(ev.get("call") or ev.get("function") or ev.get("event") or "")
            found.append(Evidence("finding", d.get("block_number"), tx, str(d.get("monitor_id")),
                                  call, json.dumps(ev, sort_keys=True)[:300]))  # fmt: skip
        else:
            detail = d.get("detail", {})
            found.append(Evidence(f"action {step}", detail.get("block_number"), tx,
                                  f"{d.get('playbook')}.{d.get('action')}", str(d.get("target", "")),
                                  json.dumps({k: v for k, v in detail.items() if k != "data"},
                                             sort_keys=True)[:300]))  # fmt: skip
    return found


async def gather(
    session: AsyncSession, service: IncidentService, incident_id: str, series: Series | None = None
) -> ReportData:
    incident = await service.get(session, incident_id)
    timeline = await service.timeline(session, incident_id)
    return ReportData(
        incident=incident,
        metrics=incident_metrics(incident),
        transitions=await service.transitions(session, incident_id),
        participants=await service.participants(session, incident_id),
        tasks=await service.tasks(session, incident_id),
        timeline=timeline,
        evidence=_evidence(timeline),
        series=list(series) if series is not None else series_from_timeline(timeline),
    )


def plot_png(data: ReportData) -> bytes | None:
    """The value at risk over blocks, with detection and containment marked; None without data."""
    if not data.series:
        return None
    figure = Figure(figsize=(8, 3.5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    blocks, values = zip(*data.series, strict=True)
    axes.plot(blocks, values, marker="o", linewidth=1.5, label="value at risk")
    for block, label, style in ((data.incident.detected_block, "detected", "--"),
                                (data.incident.contained_block, "contained", ":")):  # fmt: skip
        if block is not None:
            axes.axvline(block, linestyle=style, color="grey")
            axes.annotate(label, (block, max(values)), rotation=90, va="top", ha="right", fontsize=8)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # blocks are whole numbers
    axes.set_xlabel("block")
    axes.set_ylabel("value at risk")
    axes.set_title(f"{data.incident.id}: {data.incident.title}", fontsize=10)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _dash(value: object) -> object:
    return "—" if value is None else value


def summarize(entry: TimelineEntry) -> str:
    d = entry.data
    texts = {
        TimelineKind.FINDING: lambda: ("retracted " + str(d.get("fingerprint"))) if d.get("retracted")
        else f"{d.get('monitor_id')}: {d.get('title')} (block {d.get('block_number')})",
        TimelineKind.STATE_CHANGE: lambda: (f"{d.get('from') or '—'} → {d.get('to')}" if "to" in d
                                            else f"severity → {d.get('severity')}")
        + (f" ({d['resolution']})" if d.get("resolution") else "")
        + (f": {d['reason']}" if d.get("reason") else ""),
        TimelineKind.NOTE: lambda: str(d.get("text", "")),
        TimelineKind.NOTIFICATION: lambda: f"{d.get('channel')}: {d.get('event')} {d.get('status')}",
    }  # fmt: skip
    if entry.kind in texts:
        return texts[entry.kind]()
    if "step" in d:
        detail = d.get("detail")
        why = (detail.get("error") or detail.get("reason")) if isinstance(detail, dict) else None
        return (
            f"{d.get('action')} {d.get('step')}: {d.get('target')}"
            + (f" tx {d['tx_hash']}" if d.get("tx_hash") else "")
            + (f" ({why})" if why else "")
        )
    return json.dumps(dict(d), sort_keys=True)[:200]


def _environment() -> Environment:
    env = Environment(autoescape=select_autoescape(default=True, default_for_string=True),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)  # fmt: skip
    env.filters.update(when=format_time, duration=format_duration, summary=summarize, dash=_dash,
                       severity=lambda v: str(Severity(v)))  # fmt: skip
    return env


def _context(data: ReportData, plot: str | None) -> dict[str, Any]:
    return {"i": data.incident, "m": data.metrics, "data": data, "plot": plot,
            "generated": format_time(int(datetime.now(UTC).timestamp() * 1000))}  # fmt: skip


def render_markdown(data: ReportData, plot_file: str | None) -> str:
    env = _environment()
    env.autoescape = False
    return env.from_string(MARKDOWN).render(_context(data, plot_file))


def render_html(data: ReportData, png: bytes | None) -> str:
    uri = "data:image/png;base64," + base64.b64encode(png).decode() if png else None
    source = resources.files("breakglass.incidents").joinpath("report.html").read_text("utf-8")
    return _environment().from_string(source).render(_context(data, uri))


def write_report(data: ReportData, out_dir: Path) -> ReportFiles:
    """Write ``<id>.md``, ``<id>.html`` and (with a series) ``<id>-value-at-risk.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    png = plot_png(data)
    plot_path = out_dir / f"{data.incident.id}-value-at-risk.png" if png else None
    if plot_path is not None and png is not None:
        plot_path.write_bytes(png)
    markdown = out_dir / f"{data.incident.id}.md"
    markdown.write_text(render_markdown(data, plot_path.name if plot_path else None), "utf-8")
    html = out_dir / f"{data.incident.id}.html"
    html.write_text(render_html(data, png), "utf-8")
    return ReportFiles(markdown, html, plot_path)

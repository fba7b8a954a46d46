"""The coverage report: per containment, each function's verdict, with the calls that show it.

Verdicts, for a function some probe could call before the containment:

- ``refused``: every such call now reverts;
- ``open``: some call still succeeds, and no token left the protocol's holders;
- ``value-out``: some call still succeeds *and* the protocol's holders hold less of a token after it
  (net over all holders, so value moving between protocol contracts is not counted): a value path the
  containment leaves open, flagged.

A function no probe could call even before the containment is ``untested``: the audit could not tell.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Attempt", "ContainmentResult", "CoverageReport", "FunctionVerdict"]


@dataclass(frozen=True, slots=True)
class Attempt:
    call: str
    """``contract.function(args) from sender``"""
    source: str
    ok: bool
    reason: str = ""
    outflow: dict[str, int] = field(default_factory=dict)
    """Token name -> net amount the protocol's holders lost (raw units), when they lost any."""


@dataclass(frozen=True, slots=True)
class FunctionVerdict:
    function: str
    """``contract.signature``"""
    verdict: str
    attempts: tuple[Attempt, ...]


@dataclass(frozen=True, slots=True)
class ContainmentResult:
    name: str
    kind: str
    playbook: str
    calls: tuple[str, ...]
    applied: bool
    error: str = ""
    notes: tuple[str, ...] = ()
    functions: tuple[FunctionVerdict, ...] = ()

    def with_verdict(self, verdict: str) -> list[FunctionVerdict]:
        return [f for f in self.functions if f.verdict == verdict]


@dataclass(frozen=True, slots=True)
class CoverageReport:
    config: str
    chain_id: int
    block: int
    forked: bool
    tokens: tuple[str, ...]
    holders: tuple[str, ...]
    probes: dict[str, int]
    """``history`` and ``generated``: how many calls were tried before any containment."""
    untested: tuple[str, ...]
    """Functions no probe could call even with nothing contained."""
    baseline_value_out: tuple[str, ...]
    """Functions whose successful calls moved value out with nothing contained (exits, redemptions)."""
    results: tuple[ContainmentResult, ...]
    skipped: tuple[str, ...] = ()

    @property
    def flagged(self) -> list[tuple[str, str]]:
        """(containment, function) pairs where value still leaves the protocol."""
        return [(r.name, f.function) for r in self.results for f in r.with_verdict("value-out")]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["flagged"] = [{"containment": c, "function": f} for c, f in self.flagged]
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str)

    def text(self) -> str:
        lines = [
            f"pause-coverage audit of {self.config}: chain {self.chain_id}, block {self.block}"
            f" ({'fork' if self.forked else 'devnet'})",
            f"probes: {self.probes.get('history', 0)} from history,"
            f" {self.probes.get('generated', 0)} generated;"
            f" value measured as {', '.join(self.tokens)} held by {', '.join(self.holders)}",
        ]
        if self.untested:
            lines.append(f"untested (no call succeeded even uncontained): {', '.join(self.untested)}")
        for result in self.results:
            lines.append("")
            lines.append(f"== {result.name} ({result.kind}, playbook {result.playbook})")
            if not result.applied:
                lines.append(f"   NOT APPLIED: {result.error}")
                continue
            for note in result.notes:
                lines.append(f"   note: {note}")
            for verdict, label in (
                ("value-out", "OPEN VALUE PATH"),
                ("open", "still succeeds"),
                ("refused", "refused"),
            ):
                for f in result.with_verdict(verdict):
                    example = next((a for a in f.attempts if a.ok == (verdict != "refused")), f.attempts[0])
                    extra = ""
                    if example.outflow:
                        extra = " moves out " + ", ".join(f"{v} {k}" for k, v in example.outflow.items())
                    elif not example.ok:
                        extra = f" ({example.reason[:80]})"
                    lines.append(f"   {label:16} {f.function}: {example.call}{extra}")
        if self.skipped:
            lines.append("")
            lines.extend(f"not audited: {s}" for s in self.skipped)
        lines.append("")
        lines.append(f"{len(self.flagged)} value path(s) left open")
        return "\n".join(lines)

    def html(self) -> str:
        e = html.escape
        rows: list[str] = []
        for result in self.results:
            rows.append(
                f"<h2>{e(result.name)} <small>{e(result.kind)}, playbook {e(result.playbook)}</small></h2>"
            )
            rows.append("<p>" + "<br>".join(e(c) for c in result.calls) + "</p>")
            if not result.applied:
                rows.append(f"<p class='bad'>not applied: {e(result.error)}</p>")
                continue
            rows.extend(f"<p class='note'>{e(n)}</p>" for n in result.notes)
            rows.append(
                "<table><tr><th>function</th><th>verdict</th><th>example call</th><th>outcome</th></tr>"
            )
            order = {"value-out": 0, "open": 1, "refused": 2}
            for f in sorted(result.functions, key=lambda f: (order.get(f.verdict, 3), f.function)):
                example = next((a for a in f.attempts if a.ok == (f.verdict != "refused")), f.attempts[0])
                outcome = (
                    ", ".join(f"-{v} {k}" for k, v in example.outflow.items())
                    if example.outflow
                    else ("succeeds" if example.ok else example.reason)
                )
                rows.append(
                    f"<tr class='{e(f.verdict)}'><td>{e(f.function)}</td><td>{e(f.verdict)}</td>"
                    f"<td>{e(example.call)} <small>{e(example.source)}</small></td><td>{e(outcome)}</td></tr>"
                )
            rows.append("</table>")
        untested = ", ".join(self.untested) or "none"
        skipped = "".join(f"<li>{e(s)}</li>" for s in self.skipped)
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>breakglass pause coverage</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 6px;font-size:90%}"
            ".value-out{background:#fdd}.open{background:#ffe}.refused{background:#dfd}"
            ".bad{color:#a00}</style></head><body>"
            f"<h1>Pause coverage: {e(self.config)}</h1>"
            f"<p>chain {self.chain_id}, block {self.block} ({'fork' if self.forked else 'devnet'}); probes: "
            f"{self.probes.get('history', 0)} from history, "
            f"{self.probes.get('generated', 0)} generated; value "
            f"measured as {e(', '.join(self.tokens))} held by {e(', '.join(self.holders))}</p>"
            f"<p><b>{len(self.flagged)} value path(s) left open.</b> Untested functions: {e(untested)}</p>"
            + "".join(rows)
            + (f"<h2>Not audited</h2><ul>{skipped}</ul>" if skipped else "")
            + "</body></html>"
        )

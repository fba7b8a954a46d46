"""The coverage report: per containment, each function's verdict, with the calls that show it.

Verdicts, for a function some probe could call before the containment:

- ``refused``: every such call now reverts;
- ``open``: some call still succeeds, and no token left the protocol's holders;
- ``value-out``: some call still succeeds *and* the protocol's holders hold less of a token after it
  (net over all holders, so value moving between protocol contracts is not counted).

A ``value-out`` function is **flagged** when it is within the containment's reach (its contract is
one where the containment refused another function): a value path the containment left open beside
the ones it closed. A function no probe could call even before the containment is ``untested``: the
audit could not tell.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["Attempt", "ContainmentResult", "CoverageReport", "FunctionVerdict"]

_ORDER = {"value-out": 0, "open": 1, "refused": 2}


@dataclass(frozen=True, slots=True)
class Attempt:
    call: str
    """``contract.function(args) from sender``"""
    source: str
    ok: bool
    reason: str = ""
    outflow: dict[str, int] = field(default_factory=dict)
    """Token name -> net amount the protocol's holders lost (raw units), when they lost any."""
    sender: str = ""


@dataclass(frozen=True, slots=True)
class FunctionVerdict:
    function: str
    """``contract.signature``"""
    verdict: str
    attempts: tuple[Attempt, ...]
    in_reach: bool = False
    """Its contract is one where the containment refused some function."""

    @property
    def flagged(self) -> bool:
        return self.verdict == "value-out" and self.in_reach

    @property
    def example(self) -> Attempt:
        """The call that shows the verdict: one moving value out, else a success, unless refused."""
        if self.verdict == "value-out":
            return next(a for a in self.attempts if a.ok and a.outflow)
        return next((a for a in self.attempts if a.ok == (self.verdict != "refused")), self.attempts[0])


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
    subject: str | None = None
    """For a block: the account blocked, whose own calls alone were tried."""

    def with_verdict(self, verdict: str) -> list[FunctionVerdict]:
        return sorted((f for f in self.functions if f.verdict == verdict), key=lambda f: f.function)


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
        """(containment, function): value still leaving beside what the containment closed."""
        return [(r.name, f.function) for r in self.results for f in r.functions if f.flagged]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["flagged"] = [{"containment": c, "function": f} for c, f in self.flagged]
        return data

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, default=str)

    def _header(self) -> list[str]:
        return [
            f"pause-coverage audit of {self.config}: chain {self.chain_id}, block {self.block}"
            f" ({'fork' if self.forked else 'devnet'})",
            f"probes: {self.probes.get('history', 0)} replayed from history,"
            f" {self.probes.get('generated', 0)} generated from the ABIs;"
            f" value: {', '.join(self.tokens)} held by {', '.join(self.holders)}",
        ]

    def text(self) -> str:
        lines = self._header()
        if self.untested:
            lines.append(f"untested, no call succeeded even uncontained ({len(self.untested)}): ")
            lines.append("   " + ", ".join(self.untested))
        for r in self.results:
            lines.append("")
            what = "every call of every playbook" if r.kind == "all" else f"{r.kind} of playbook {r.playbook}"
            lines.append(f"== {r.name} ({what})")
            if r.kind != "action":
                lines.append("   calls: " + "; ".join(r.calls))
            if not r.applied:
                lines.append(f"   NOT APPLIED: {r.error}")
                continue
            lines.extend(f"   note: {n}" for n in r.notes)
            if r.subject:
                lines.append(f"   only the calls of {r.subject} were tried")
            refused = r.with_verdict("refused")
            if not refused:
                lines.append("   REFUSES NOTHING that succeeded before")
            for f in r.with_verdict("value-out"):
                a = f.example
                label = "OPEN VALUE PATH" if f.flagged else "value out, beyond its reach"
                moved = ", ".join(f"{v} {k}" for k, v in a.outflow.items())
                lines.append(f"   {label}: {f.function}  e.g. {a.call} moves out {moved}")
            still = [f.function for f in r.with_verdict("open")]
            if still:
                lines.append(f"   still succeed, no value out ({len(still)}): {', '.join(still)}")
            if refused:
                lines.append(f"   refused ({len(refused)}): " + ", ".join(f.function for f in refused))
                reasons = sorted({f.example.reason for f in refused})
                lines.append(f"   with: {'; '.join(reasons)[:300]}")
        if self.skipped:
            lines.append("")
            lines.extend(f"not audited: {s}" for s in self.skipped)
        lines.append("")
        lines.append(f"{len(self.flagged)} value path(s) left open within a containment's reach")
        return "\n".join(lines)

    def html(self) -> str:
        e = html.escape
        parts: list[str] = []
        for r in self.results:
            parts.append(f"<h2>{e(r.name)} <small>{e(r.kind)} of playbook {e(r.playbook)}</small></h2>")
            parts.append("<p>" + "<br>".join(e(c) for c in r.calls) + "</p>")
            if not r.applied:
                parts.append(f"<p class='bad'>not applied: {e(r.error)}</p>")
                continue
            parts.extend(f"<p class='note'>{e(n)}</p>" for n in r.notes)
            parts.append(
                "<table><tr><th>function</th><th>verdict</th><th>example call</th><th>outcome</th></tr>"
            )
            for f in sorted(r.functions, key=lambda f: (_ORDER.get(f.verdict, 3), not f.flagged, f.function)):
                a = f.example
                outcome = (
                    ", ".join(f"-{v} {k}" for k, v in a.outflow.items())
                    if a.outflow
                    else ("succeeds" if a.ok else a.reason)
                )
                verdict = "OPEN VALUE PATH" if f.flagged else f.verdict
                css = "flagged" if f.flagged else f.verdict
                parts.append(
                    f"<tr class='{e(css)}'><td>{e(f.function)}</td><td>{e(verdict)}</td>"
                    f"<td>{e(a.call)} <small>{e(a.source)}</small></td><td>{e(outcome)}</td></tr>"
                )
            parts.append("</table>")
        head = "<br>".join(e(line) for line in self._header())
        untested = ", ".join(self.untested) or "none"
        skipped = "".join(f"<li>{e(s)}</li>" for s in self.skipped)
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>breakglass pause coverage</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 6px;font-size:90%}.flagged{background:#f99}"
            ".value-out{background:#fdd}.open{background:#ffe}.refused{background:#dfd}"
            ".bad{color:#a00}</style></head><body>"
            f"<h1>Pause coverage</h1><p>{head}</p>"
            f"<p><b>{len(self.flagged)} value path(s) left open within a containment's reach.</b></p>"
            f"<p>Untested functions: {e(untested)}</p>"
            + "".join(parts)
            + (f"<h2>Not audited</h2><ul>{skipped}</ul>" if skipped else "")
            + "</body></html>"
        )

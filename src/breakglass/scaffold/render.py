"""The starter configuration as commented YAML: monitors, a least-power policy and a playbook.

Written as text (not dumped) so that every guess carries the comment a reviewer needs; ``breakglass
check`` accepts the result as it is, and the tests hold it to that.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from breakglass.scaffold.surface import EmergencyFunction, ProtocolSurface

__all__ = ["InitOptions", "render"]

_BUILT_IN_LOOSENING = re.compile(
    r"^(unpause|resume|unblock|unfreeze|raise|increase|grant|enable|upgrade|renounce|withdraw|approve|setAdmin)"
    r"|^transferOwnership$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class InitOptions:
    deployment: str
    """the deployment's path as the configuration names it (relative to the configuration file)"""
    protocol: str
    source: str
    """what it was made from, for the header"""


def _q(value: str) -> str:
    return json.dumps(value)


def _ident(*parts: str) -> str:
    text = "-".join(re.sub(r"(?<!^)(?=[A-Z])", "-", p).lower() for p in parts if p)
    return re.sub(r"[^a-z0-9-]+", "-", text).strip("-")


def _starter(surface: ProtocolSurface) -> EmergencyFunction | None:
    """The broadest safe call: a global pause before a per-part one; not a switch (its ``true`` is
    allowed, but a plain emergency function says more plainly what it does)."""
    candidates = [f for f in surface.tightening if not f.switch]
    if not candidates:
        return None
    return min(
        candidates, key=lambda f: (not f.global_, f.switch, f.breadth, len(f.inputs), f.contract, f.name)
    )


def _args(fn: EmergencyFunction) -> tuple[list[str], list[str], list[str]]:
    """(YAML args, labels the finding must carry, notes) for a call of ``fn``."""
    args: list[str] = []
    labels: list[str] = []
    notes: list[str] = []
    for i, (name, kind) in enumerate(fn.inputs):
        arg = name or f"arg{i}"
        if kind == "bool":
            args.append("true")
            notes.append(f"{arg}=true is the safe direction; false would undo it")
        elif kind.startswith(("uint", "int")) and not re.search(r"market|asset|id|key", arg, re.IGNORECASE):
            args.append("1")
            notes.append(f"{arg}=1: a code of your choosing (e.g. a reason) - check its meaning")
        else:
            args.append(_q(f"{{labels.{arg}}}"))
            labels.append(arg)
    return args, labels, notes


def _arg_rules(fn: EmergencyFunction) -> str:
    """The policy's rule of each argument: a switch's bool pinned to true, anything else any (an id,
    a market key, a reason code)."""
    if not fn.inputs:
        return ""
    rules = ", ".join(
        f"{_q(name or str(i))}: {'true' if kind == 'bool' else 'any'}"
        for i, (name, kind) in enumerate(fn.inputs)
    )
    return f", args: {{{rules}}}"


def render(surface: ProtocolSurface, options: InitOptions) -> str:
    lines: list[str] = [
        f"# breakglass configuration scaffolded by `breakglass init` from {options.source}.",
        "# Everything below is a guess from the ABIs: read each comment, then",
        "#   breakglass check THIS_FILE",
        "#   breakglass playbook test THIS_FILE --finding FINDING.json --from GUARDIAN_ADDRESS",
        "# before `breakglass serve`. docs/protect-your-protocol.md walks through it.",
        "",
        f"deployment: {_q(options.deployment)}",
        f"protocol: {_q(options.protocol)}",
        "",
        "chain:",
        "  confirmations: 1 # 0 reacts on the head (findings of reorged blocks are retracted)",
        '  # rpc: ["${RPC_URL}"]     # your endpoints, failover order (secrets: use the environment)',
        "",
        "monitors:",
    ]
    monitor_ids: list[str] = []

    # ---- the emergency surface found, as comments (what the policy and playbook below rely on)
    lines.append("  # Emergency surface found in the ABIs:")
    for c in surface.contracts:
        facts: list[str] = []
        if c.pausable:
            facts.append("Pausable")
        if c.roles:
            facts.append("AccessControl roles " + ", ".join(c.roles))
        if c.ownable:
            facts.append("owned")
        if c.upgradeable:
            facts.append("ERC-1967 upgradeable")
        if c.tightening:
            facts.append("safer: " + ", ".join(f.signature for f in c.tightening))
        if c.loosening:
            facts.append("undo: " + ", ".join(sorted(set(c.loosening))))
        if facts:
            lines.append(f"  #   {c.name}: " + "; ".join(facts))

    governed = surface.governed()
    if governed:
        parameter_events = sorted({e for c in governed for e in c.parameter_events})
        lines += [
            "",
            "  # ---- governance: role, owner, upgrade, pause and parameter changes by anyone not allowed",
            "  - id: governance",
            "    kind: governance",
            "    severity: high",
            f"    contracts: [{', '.join(c.name for c in governed)}]",
            "    allow: [] # the addresses that legitimately govern: your timelock, Safe, guardian",
        ]
        if parameter_events:
            lines.append(f"    parameter_events: [{', '.join(parameter_events)}]")
        monitor_ids.append("governance")

    resumes = [(c.name, e) for c in surface.contracts for e in c.resume_events]
    if resumes:
        lines += ["", "  # ---- an emergency power undone: someone unpaused, unfroze or resumed"]
    for contract, event in resumes:
        mid = _ident("undone", contract, event)
        lines += [
            f"  - id: {mid}",
            "    kind: event",
            "    severity: high",
            f"    contract: {contract}",
            f"    event: {event}",
        ]
        monitor_ids.append(mid)

    flows: list[str] = []
    holders = surface.holders
    if surface.tokens and holders:
        lines += [
            "",
            "  # ---- money leaving: net outflow of each token from the protocol's contracts. The fraction",
            "  # is a starting point: replay your history (`breakglass test-monitor`) and tune it.",
        ]
    for token in surface.tokens if holders else []:
        mid = _ident("outflow", token)
        lines += [
            f"  - id: {mid}",
            "    kind: flow",
            "    severity: critical",
            f"    token: {token}",
            f"    holders: [{', '.join(holders)}]",
            "    window_blocks: 50",
            "    max_fraction: 0.3",
        ]
        flows.append(mid)
        monitor_ids.append(mid)
    if not monitor_ids:
        lines.append("  []  # nothing found to watch: add invariants and events (docs/detection.md)")

    starter = _starter(surface)
    lines += [
        "",
        "responder:",
        "  guardian: {env: BREAKGLASS_GUARDIAN_KEY} # or {keystore: guardian.json, password: ${GUARDIAN_PW}}",
        "  fees: {priority_fee_gwei: 2, outbid_margin: 0.25}",
        "",
        "# Least power: the responder may only send what `allow` lists, and only with arguments that pass",
        "# their rules (any; a fixed value: a switch is pinned to true; limits; or a bound read on chain).",
        "# Every undo (unpause, resume, unfreeze, grant, raise...) is refused. Give the guardian key only",
        "# these powers on chain too (a pause-only role).",
        "policy:",
    ]
    if surface.tightening:
        lines.append("  allow:")
        for f in surface.tightening:
            lines.append(f"    - {{contract: {f.contract}, function: {f.name}{_arg_rules(f)}}}")
            if f.switch:
                lines.append(f"      # {f.signature} is a switch: only true (false would undo it)")
    else:
        lines.append("  allow: [] # no pause, freeze or suspend function found: nothing may be sent")
    extra_loosening = sorted(
        {n for c in surface.contracts for n in c.loosening if not _BUILT_IN_LOOSENING.match(n)}
    )
    if extra_loosening:
        lines.append(f"  loosening: [{', '.join(extra_loosening)}]")
    lines += [
        "  max_gas: 500000",
        "  max_fee_gwei: 300",
        "  rate_limit: {count: 10, per_seconds: 3600}",
        "",
        "playbooks:",
    ]
    if starter is None:
        lines.append("  []  # add one once the guardian has a pause to call (docs/response.md)")
        return "\n".join(lines) + "\n"
    args, labels, notes = _args(starter)
    match = f"monitors: [{', '.join(flows)}], " if flows else ""
    label_match = (
        f", labels: {{{', '.join(f'{label}: {_q(chr(42))}' for label in labels)}}}" if labels else ""
    )
    lines += [
        "  - id: contain",
        f"    description: {_q('critical finding: ' + starter.signature + ' from the guardian key')}",
        f"    match: {{{match}min_severity: critical{label_match}}}",
        "    actions:",
        "      - kind: call",
        "        id: emergency",
        f"        contract: {starter.contract}",
        f"        function: {starter.name}",
    ]
    if args:
        lines.append(f"        args: [{', '.join(args)}]")
    for note in notes:
        lines.append(f"        # {note}")
    lines += [
        "        once_per: target",
        f"      - {{kind: notify, id: tell, message: {_q(starter.name + ' sent ({finding.monitor_id})')}}}",
        "      - {kind: incident, id: escalate, severity: critical}",
    ]
    return "\n".join(lines) + "\n"

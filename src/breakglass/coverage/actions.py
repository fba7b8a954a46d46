"""The containments to audit, from the playbooks: each call action alone, each playbook's calls
together (the state its run reaches), and every call of every playbook at once (the most they reach
together), with concrete arguments.

A playbook's arguments are templates filled from a finding. The audit has no finding: ``{labels.X}``
takes each value the playbook can match (its ``match.labels``, else the labels of the monitors it
matches), so a per-market pause is audited once per market its monitors name. An address from the
finding's evidence (the attacker) becomes a stand-in the audit chooses (a user who took value out
with nothing contained), so that a block is tried on someone with value to take. Any other evidence
value leaves the action unaudited, and the report says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from eth_abi.abi import encode

from breakglass.config.deployment import ContractRecord
from breakglass.config.models import Settings
from breakglass.config.playbooks import CallAction, PlaybookConfig
from breakglass.respond.calls import CallTemplate, coerce_arg, describe_call

__all__ = ["ActionCall", "Containment", "containments"]

_WHOLE = re.compile(r"^\{(?P<path>[a-z_]+(?:\.[A-Za-z0-9_-]+)+)\}$")
_PART = re.compile(r"\{(?P<path>[a-z_]+(?:\.[A-Za-z0-9_-]+)+)\}")


@dataclass(frozen=True, slots=True)
class ActionCall:
    """One containment call as the executor would send it."""

    target: str
    """``contract.function(args)``"""
    sender: str
    address: str
    data: str


@dataclass(frozen=True, slots=True)
class Containment:
    """What is applied before the users' calls are tried: one call, or a playbook's calls in order."""

    name: str
    calls: tuple[ActionCall, ...]
    playbook: str
    kind: str = "action"
    """``action`` (one call), ``playbook`` (one playbook's calls, cumulative) or ``all`` (every call of
    every playbook: the most they can reach together)."""
    notes: tuple[str, ...] = field(default=())
    subject: str | None = None
    """The account a block is aimed at (the stand-in): only its own calls tell whether the block holds."""
    blocked: tuple[str, ...] = ()
    """Accounts a call of the containment blocks: their refused calls do not extend its reach."""


class _Unresolved(Exception):
    pass


def _label_sets(playbook: PlaybookConfig, settings: Settings) -> list[dict[str, str]]:
    """Each combination of the labels the playbook's calls use, as the findings it matches carry them."""
    used = {
        m.group("path").split(".", 1)[1]
        for a in playbook.actions
        if isinstance(a, CallAction)
        for arg in a.args
        if isinstance(arg, str)
        for m in _PART.finditer(arg)
        if m.group("path").startswith("labels.")
    }
    fixed = {k: v for k, v in playbook.match.labels.items() if v != "*"}
    wanted = set(playbook.match.monitors)
    sets: list[dict[str, str]] = []
    for monitor in settings.monitors:
        if wanted and monitor.id not in wanted:
            continue
        labels = {**getattr(monitor, "labels", {}), **fixed}
        if any(labels.get(k) is None for k in playbook.match.labels):
            continue
        labels = {k: v for k, v in labels.items() if k in used}
        if labels not in sets:
            sets.append(labels)
    return sets or [{k: v for k, v in fixed.items() if k in used}]


@dataclass(frozen=True, slots=True)
class _Fill:
    """What a finding would give: label values, example evidence, the stand-in for an address."""

    labels: Mapping[str, str]
    evidence: Mapping[str, str]
    stand_in: str | None


def _render(template: str | int | bool, fill: _Fill, kind: str, stood: list[str]) -> Any:
    if not isinstance(template, str):
        return template

    def lookup(path: str) -> Any:
        root, _, rest = path.partition(".")
        if root == "labels" and rest in fill.labels:
            return fill.labels[rest]
        if root == "evidence" and rest in fill.evidence:
            return fill.evidence[rest]
        if root == "evidence" and kind == "address" and fill.stand_in is not None:
            stood.append(fill.stand_in)
            return fill.stand_in
        raise _Unresolved(path)

    whole = _WHOLE.match(template)
    if whole:
        return lookup(whole.group("path"))
    return _PART.sub(lambda m: str(lookup(m.group("path"))), template)


def _call(
    action: CallAction, record: ContractRecord, sender: str, fill: _Fill
) -> tuple[ActionCall, str | None]:
    """The call, and the stand-in when it took the place of the finding's address."""
    template = CallTemplate.build(action.contract, record.address, record.abi, action.function, action.args)
    stood: list[str] = []
    values = [
        coerce_arg(kind, _render(arg, fill, kind, stood), f"{action.contract}.{action.function}")
        for kind, arg in zip(template.arg_types, template.args, strict=True)
    ]
    data = template.selector + encode(list(template.arg_types), values)
    target = describe_call(action.contract, action.function, values)
    return ActionCall(target, sender, template.address, "0x" + data.hex()), (stood[0] if stood else None)


def containments(
    settings: Settings,
    contracts: Mapping[str, ContractRecord],
    guardian: str | None,
    stand_in: str | None,
    evidence: Mapping[str, str] | None = None,
) -> tuple[list[Containment], list[str]]:
    """The containments to audit, and why any call action could not be (one line each).

    ``evidence`` gives example values for ``{evidence.PATH}`` templates (``args.marketId`` -> ``0``)."""
    safes = {s.name: s.address for s in settings.safes}
    singles: dict[str, Containment] = {}
    combined: list[Containment] = []
    skipped: list[str] = []
    for playbook in settings.playbooks:
        if not playbook.enabled:
            continue
        for labels in _label_sets(playbook, settings):
            shown = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            calls: list[ActionCall] = []
            notes: list[str] = []
            blocked: set[str] = set()
            for action in playbook.actions:
                if not isinstance(action, CallAction):
                    continue
                where = f"{playbook.id}.{action.id}" + (f" [{shown}]" if shown else "")
                sender = guardian if action.via == "guardian" else safes.get(action.via.removeprefix("safe:"))
                if sender is None:
                    skipped.append(f"{where}: no address for {action.via} (give --guardian)")
                    continue
                try:
                    call, subject = _call(
                        action, contracts[action.contract], sender, _Fill(labels, evidence or {}, stand_in)
                    )
                except _Unresolved as exc:
                    skipped.append(
                        f"{where}: argument {{{exc}}} comes from the finding; no label gives it (--evidence)"
                    )
                    continue
                note: tuple[str, ...] = ()
                if subject is not None:
                    note = (f"{call.target}: the finding's address stands as a user of the history",)
                    notes.extend(note)
                    blocked.add(subject)
                calls.append(call)
                single = Containment(
                    call.target,
                    (call,),
                    playbook.id,
                    notes=note,
                    subject=subject,
                    blocked=(subject,) if subject else (),
                )
                singles.setdefault(call.target, single)
            if len(calls) > 1:
                name = f"{playbook.id}" + (f" [{shown}]" if shown else "")
                combined.append(
                    Containment(
                        name, tuple(calls), playbook.id, "playbook", tuple(notes), None, tuple(blocked)
                    )
                )
    everything: list[Containment] = []
    if len({u.playbook for u in singles.values()}) > 1:
        # the most the playbooks can reach: every call of every playbook, for every label value
        calls_all = tuple(c for u in singles.values() for c in u.calls)
        blocked_all = tuple(sorted({b for u in singles.values() for b in u.blocked}))
        notes_all = tuple(n for u in singles.values() for n in u.notes)
        everything.append(Containment("all playbooks", calls_all, "*", "all", notes_all, None, blocked_all))
    return [*singles.values(), *combined, *everything], skipped

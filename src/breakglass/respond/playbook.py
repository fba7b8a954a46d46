"""Playbooks compiled from configuration: which findings they match and the concrete steps they take.

Compilation (at start, not per finding) resolves every contract and checks every call against its ABI,
so a typo is a ``ConfigError`` naming the playbook and action, never a failure during an attack. Per
finding, ``steps`` renders the templated arguments and builds each step's idempotency key:

    once_per: finding   ->  "<finding breach>/<playbook>.<action>/<target digest>"
    once_per: target    ->  "target/<target digest>"    (a global pause happens once, whoever asks)

The target digest is of the contract and calldata, and of the chain with several chains (one address
on two chains is two targets).

``Finding.breach`` names the breach a finding reports: for a state monitor (an invariant, a flow) one
identity for as long as it stays broken, across blocks and restarts, so an ongoing breach is acted on
once per target, not once per block; for the others, its transaction (the same while pending and
once mined). A breach that ends and begins again is a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from breakglass.config.deployment import ContractRecord
from breakglass.config.playbooks import (
    CallAction,
    NotifyAction,
    PlaybookAction,
    PlaybookConfig,
    RatifyConfig,
)
from breakglass.config.yamlsource import PathKey, format_path
from breakglass.domain import Finding, Severity, fingerprint_of
from breakglass.errors import ConfigError, ConfigIssue, ResponseError
from breakglass.respond.calls import CallTemplate, ContractCall, MissingField, render_arg
from breakglass.respond.policy import Locate, Policy

__all__ = [
    "CallStep",
    "CompiledPlaybook",
    "FailedStep",
    "MessageStep",
    "PlaybookBook",
    "Step",
    "describe_steps",
    "vet_playbooks",
]


@dataclass(frozen=True, slots=True)
class RatifyCheck:
    """How to read, on chain, whether governance ratified a call: a view call and which output is the flag."""

    within: int
    to: str
    data: bytes
    outputs: tuple[str, ...]
    index: int
    view: str

    def as_detail(self) -> dict[str, Any]:
        return {"within": self.within, "to": self.to, "data": "0x" + self.data.hex(),
                "outputs": list(self.outputs), "index": self.index, "view": self.view}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CallStep:
    playbook: str
    action: str
    key: str
    call: ContractCall
    via: str
    ratify: RatifyCheck | None


@dataclass(frozen=True, slots=True)
class MessageStep:
    """A notify or incident action: published for the notification or incident stage."""

    playbook: str
    action: str
    key: str
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class FailedStep:
    """A step that could not be built for this finding (a template named a missing label)."""

    playbook: str
    action: str
    key: str
    error: str
    target: str = ""
    """what it would have called (``contract.function``), for the audit trail"""


Step = CallStep | MessageStep | FailedStep


@dataclass(frozen=True, slots=True)
class CompiledPlaybook:
    config: PlaybookConfig
    calls: Mapping[str, CallTemplate]
    min_severity: Severity
    ratify_views: Mapping[str, tuple[RatifyConfig, CallTemplate]]

    def matches(self, finding: Finding) -> bool:
        match = self.config.match
        if not self.config.enabled or finding.severity < self.min_severity:
            return False
        if match.monitors and finding.monitor_id not in match.monitors:
            return False
        for label, wanted in match.labels.items():
            value = finding.labels.get(label)
            if value is None or (wanted != "*" and value != wanted):
                return False
        return True


class PlaybookBook:
    """All playbooks of a configuration, compiled."""

    def __init__(self, playbooks: list[CompiledPlaybook]) -> None:
        self.playbooks = playbooks
        self.chain_id: int | None = None
        """With several chains, the chain this book acts on: it is part of each call's digest, since
        one contract address and calldata on two chains are two calls (a one-chain book keeps the
        digests its ledger already holds)."""

    @classmethod
    def compile(
        cls,
        playbooks: list[PlaybookConfig],
        contracts: Mapping[str, ContractRecord],
        file: str = "",
        *,
        locate: Locate | None = None,
        issues: list[ConfigIssue] | None = None,
        skip: frozenset[str] = frozenset(),
    ) -> PlaybookBook:
        """Check every call action against its contract's ABI. Problems go to ``issues`` when given
        (``breakglass check``), else are raised together as one ``ConfigError``; ``locate`` gives each
        its line. Actions on a contract in ``skip`` (its ABI is unknown; reported elsewhere) are left out."""
        where = locate or (lambda path, message: ConfigIssue(file, None, format_path(path), message))
        found: list[ConfigIssue] = []
        compiled: list[CompiledPlaybook] = []
        for i, playbook in enumerate(playbooks):
            calls: dict[str, CallTemplate] = {}
            views: dict[str, tuple[RatifyConfig, CallTemplate]] = {}
            for j, action in enumerate(playbook.actions):
                if not isinstance(action, CallAction) or action.contract in skip:
                    continue
                at: PathKey = ("playbooks", i, "actions", j)
                record = contracts.get(action.contract)
                if record is None:
                    found.append(where((*at, "contract"), f"unknown contract {action.contract!r}"))
                    continue
                try:
                    calls[action.id] = CallTemplate.build(
                        action.contract, record.address, record.abi, action.function, action.args
                    )
                except ResponseError as exc:
                    found.append(where((*at, _part(str(exc))), str(exc)))
                if action.ratify is not None:
                    try:
                        views[action.id] = (
                            action.ratify,
                            _ratify_view(action.contract, record, action.ratify),
                        )
                    except ResponseError as exc:
                        found.append(where((*at, "ratify"), str(exc)))
            severity = Severity.parse(playbook.match.min_severity)
            compiled.append(CompiledPlaybook(playbook, calls, severity, views))
        if issues is not None:
            issues += found
        elif found:
            raise ConfigError(found)
        return cls(compiled)

    def matching(self, finding: Finding) -> list[CompiledPlaybook]:
        return [p for p in self.playbooks if p.matches(finding)]

    def steps(self, playbook: CompiledPlaybook, finding: Finding) -> list[Step]:
        """The steps of ``playbook`` for ``finding``, in order.

        A step whose template cannot be filled becomes a ``FailedStep``; the others still run, so a
        finding without an attacker address still gets its market paused. A call marked ``optional``
        whose template names a field this finding does not carry (``{evidence.attacker}``: only a
        simulated transaction knows its sender) is left out instead: skipped, not failed.
        """
        out: list[Step] = []
        pid = playbook.config.id
        for action in playbook.config.actions:
            try:
                out.append(self._step(playbook, action, finding))
            except ResponseError as exc:
                if isinstance(exc, MissingField) and isinstance(action, CallAction) and action.optional:
                    continue
                target = (
                    f"{action.contract}.{action.function}" if isinstance(action, CallAction) else action.id
                )
                key = f"{finding.breach}/{pid}.{action.id}"
                out.append(FailedStep(pid, action.id, key, str(exc), target))
        return out

    def _step(self, playbook: CompiledPlaybook, action: PlaybookAction, finding: Finding) -> Step:
        pid = playbook.config.id
        if isinstance(action, CallAction):
            call = playbook.calls[action.id].render(finding)
            digest = (
                fingerprint_of(call.address.lower(), call.data)
                if self.chain_id is None
                else fingerprint_of(self.chain_id, call.address.lower(), call.data)
            )
            scope = "target" if action.once_per == "target" else f"{finding.breach}/{pid}.{action.id}"
            ratify = None
            if action.id in playbook.ratify_views:
                config, view = playbook.ratify_views[action.id]
                read = view.render(finding)
                ratify = RatifyCheck(
                    config.within, read.address, read.data, view.outputs, config.output, read.target
                )
            return CallStep(pid, action.id, f"{scope}/{digest}", call, action.via, ratify)
        key = f"{finding.breach}/{pid}.{action.id}"
        if isinstance(action, NotifyAction):
            return MessageStep(pid, action.id, key, "notify", str(render_arg(action.message, finding)))
        return MessageStep(pid, action.id, key, "escalate", action.severity)


def vet_playbooks(book: PlaybookBook, policy: Policy, locate: Locate) -> list[ConfigIssue]:
    """Every playbook call the policy would always refuse, judging its function and literal arguments
    (templated arguments are judged per finding, bounds on chain): a configuration error, not a
    refusal discovered during an attack."""
    issues: list[ConfigIssue] = []
    for i, playbook in enumerate(book.playbooks):
        for j, action in enumerate(playbook.config.actions):
            template = playbook.calls.get(action.id)
            if template is None:
                continue
            reason = policy.check_static(template)
            if reason is not None:
                at = ("playbooks", i, "actions", j, "function")
                issues.append(
                    locate(at, f"the policy refuses {template.contract}.{template.function}: {reason}")
                )
    return issues


def _part(message: str) -> str:
    """Which key of a call action an ABI complaint is about (for its line in the file)."""
    return "function" if "no function" in message or "overloaded" in message else "args"


def _ratify_view(contract: str, record: ContractRecord, ratify: RatifyConfig) -> CallTemplate:
    view = CallTemplate.build(contract, record.address, record.abi, ratify.ratified, ratify.args, view=True)
    if ratify.output >= len(view.outputs) or view.outputs[ratify.output] != "bool":
        raise ResponseError(
            f"{contract}.{ratify.ratified} output {ratify.output} must be a bool "
            f"(outputs: {', '.join(view.outputs) or 'none'})"
        )
    return view


def describe_steps(steps: list[Step]) -> list[dict[str, Any]]:
    """Plain data for a dry run's output."""
    out: list[dict[str, Any]] = []
    for step in steps:
        if isinstance(step, CallStep):
            out.append(
                {
                    "playbook": step.playbook,
                    "action": step.action,
                    "via": step.via,
                    "key": step.key,
                    "call": step.call.target,
                    "to": step.call.address,
                    "data": "0x" + step.call.data.hex(),
                }
            )
        elif isinstance(step, MessageStep):
            out.append(
                {"playbook": step.playbook, "action": step.action, "kind": step.kind, "text": step.text}
            )
        else:
            out.append({"playbook": step.playbook, "action": step.action, "error": step.error})
    return out

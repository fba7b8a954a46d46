"""Governance: privileged changes (roles, ownership, upgrades, timelock, pauses, Safes, parameters).

Recognised by the events of the standard patterns, whatever the protocol (``GOVERNANCE_EVENTS``:
OpenZeppelin AccessControl, Ownable/Ownable2Step and Synthetix-style Owned, ERC-1967 proxies,
TimelockController, Pausable, Safe owners/threshold/modules/guards), plus the monitor's own
``pause_events`` and ``parameter_events``. The actor is the event's own ``sender``/``by`` argument when
it has one (the contract's ``msg.sender``: the timelock when anyone executes a queued change), else the
transaction's sender. A change is a finding unless its actor is allowlisted (``allow`` addresses,
``allow_contracts`` names, ``allow_roles``: the accounts holding an AccessControl role).

Role holders follow the chain: ``RoleGranted``/``RoleRevoked`` of the role's contract add and remove
them (after judging the event itself: a grant does not allow its own grantor), through an ``UndoLog``
so a reorg's ``rewind`` forgets holders learned on the orphaned branch; ``snapshot``/``restore``
keep them across a restart. The detector reads no state: holders granted before the first block the
watcher sees are listed by address (``members``); watching from the deployment block sees every grant.

A TimelockController's ``CallScheduled`` can also be judged by what it will call: with
``scheduled_allow``, its ``target`` and ``data`` are decoded against the deployment's ABIs and a call
not in that list of (contract, function) is a finding whoever scheduled it, so a compromised proposer
(or Safe) is seen when it queues, a delay before the change executes.

Such a call is also judged by the responder's policy (``respond/policy.py``) as if the guardian sent
it, offline: the evidence's ``scheduled.policy`` says ``allowed``, ``refused`` (with the rule and
reason) or ``needs chain`` (the static rules pass but an argument's bound is read on chain, which the
detector does not do). A call the policy refuses as a loosening (a function matching a loosening
pattern: ``unpause*``, ``raise*``, ``grant*``, ``upgrade*``...) or with an argument outside its rule
on a lever the policy allows (``setPoolPause(false)`` where only ``true`` is allowed, a limit above
its ``max``) is ``loosening: true`` and one severity above the monitor's.

The deployment's own set-up is expected, so watching from block 0 does not flag it (``SetUp``, from
the configuration's deployment): changes made in the transaction that created one of the manifest's
contracts (constructor grants, ``OwnershipTransferred(0, deployer)``), and changes in transactions
sent by the manifest's ``deployer`` up to its ``deployment_block`` (the set-up calls after the
constructors). The same key later is judged like anyone else. Without a ``deployment_block`` only
the constructors are expected.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from breakglass.config.deployment import Deployment
from breakglass.config.monitors import GovernanceMonitor
from breakglass.config.playbooks import PolicyConfig
from breakglass.detect.abi import FunctionAbi
from breakglass.detect.base import BlockContext, FindingMaker, Interest, jsonable
from breakglass.detect.reads import Contracts, ReadCall
from breakglass.detect.rewind import UndoLog
from breakglass.domain import Finding, Severity, Tx
from breakglass.errors import PolicyViolation
from breakglass.respond.calls import ContractCall
from breakglass.respond.policy import Policy

__all__ = ["GOVERNANCE_EVENTS", "GovernanceDetector", "SetUp", "parameter_events_of", "role_hash"]

GOVERNANCE_EVENTS: Mapping[str, frozenset[str]] = {
    # OpenZeppelin AccessControl
    "roles": frozenset({"RoleGranted", "RoleRevoked", "RoleAdminChanged"}),
    # OpenZeppelin Ownable and Ownable2Step; Synthetix-style Owned (nominate, then accept)
    "ownership": frozenset(
        {"OwnershipTransferred", "OwnershipTransferStarted", "OwnerNominated", "OwnerChanged"}
    ),
    # ERC-1967 proxies (transparent, UUPS, beacon; ProxyAdmin's upgrades land here too)
    "upgrades": frozenset({"Upgraded", "AdminChanged", "BeaconUpgraded"}),
    # OpenZeppelin TimelockController
    "timelock": frozenset({"CallScheduled", "MinDelayChange", "Cancelled"}),
    # OpenZeppelin Pausable; a protocol's own pause events are the monitor's pause_events
    "pause": frozenset({"Paused", "Unpaused"}),
    # Safe (v1.3/v1.4): who signs, how many, and what may act or veto without signatures
    "safe": frozenset(
        {
            "AddedOwner",
            "RemovedOwner",
            "ChangedThreshold",
            "EnabledModule",
            "DisabledModule",
            "ChangedGuard",
            "ChangedModuleGuard",
            "ChangedFallbackHandler",
        }
    ),
    "parameters": frozenset(),
}


PARAMETER_EVENT = re.compile(r"(Set|Updated|Changed|Update)$")
"""How a setting's change is usually named: ``MaxLeverageSet``, ``FeeUpdated``, ``OracleChanged``."""
DATA_EVENTS = frozenset({"AnswerUpdated", "NewRound", "CacheUpdated", "FundingRecomputed", "PriceUpdated"})
"""Named like settings, but a protocol's everyday data (prices, caches, funding)."""


DEFAULT_ADMIN_ROLE = "0x" + "00" * 32


def role_hash(role: str) -> str:
    """An AccessControl role as its events carry it: ``0x`` + 64 hex, from a name (keccak256 of it;
    ``DEFAULT_ADMIN_ROLE`` is zero) or a hash."""
    if role.startswith("0x"):
        return role.lower()
    if role == "DEFAULT_ADMIN_ROLE":
        return DEFAULT_ADMIN_ROLE
    return "0x" + keccak(text=role).hex()


def _hex32(value: object) -> str:
    return "0x" + bytes(value).hex() if isinstance(value, bytes | bytearray) else str(value).lower()


def parameter_events_of(abis: Iterable[Sequence[Mapping[str, Any]]]) -> list[str]:
    """The events of ``abis`` named like a setting's change, the standard governance events and
    everyday data excepted: ``parameter_events`` when the monitor does not list them."""
    known = set().union(*GOVERNANCE_EVENTS.values()) | DATA_EVENTS
    return sorted(
        {
            str(entry["name"])
            for abi in abis
            for entry in abi
            if entry.get("type") == "event"
            and PARAMETER_EVENT.search(str(entry.get("name", "")))
            and entry["name"] not in known
        }
    )


@dataclass(frozen=True, slots=True)
class SetUp:
    """How the protocol was deployed, as its deployment records it (see the module docstring)."""

    contracts: frozenset[str]
    """Lowercase addresses of the deployment's contracts."""
    deployer: str | None = None
    block: int | None = None

    @classmethod
    def of(cls, deployment: Deployment | None) -> SetUp | None:
        if deployment is None:
            return None
        return cls(
            frozenset(c.address.lower() for c in deployment.contracts.values()),
            deployment.deployer.lower() if deployment.deployer else None,
            deployment.block,
        )

    def set_up(self, tx: Tx, block_number: int) -> bool:
        """Whether ``tx`` (in ``block_number``) is part of the deployment itself."""
        created = tx.receipt.contract_address if tx.receipt is not None else None
        if created is not None and created.lower() in self.contracts:
            return True
        return (
            self.deployer is not None
            and self.block is not None
            and block_number <= self.block
            and tx.sender.lower() == self.deployer
        )


class GovernanceDetector:
    def __init__(
        self,
        cfg: GovernanceMonitor,
        addresses: Mapping[str, str],
        allowed: Sequence[str] = (),
        deployment: SetUp | None = None,
        known: Contracts | None = None,
        policy: Policy | None = None,
    ) -> None:
        """``addresses``: the monitored contract names -> addresses; ``allowed``: more allowed actors;
        ``deployment``: whose changes are the protocol's own set-up; ``known``: every contract of the
        deployment (name -> (address, ABI)), to name what a timelock schedules; ``policy``: the
        responder's, to judge scheduled calls by (default: an empty one, loosening patterns only)."""
        self.policy = policy or Policy(PolicyConfig(), lambda: 0.0, {})
        self.monitor_id = cfg.id
        self.interest = Interest(transactions=True)  # nothing to see in a block without one
        self.contracts = {a.lower(): n for n, a in addresses.items()}
        self.allow = {a.lower() for a in (*cfg.allow, *allowed)}
        self.roles: frozenset[tuple[str, str]] = frozenset()
        """(contract address, role hash) whose holders are allowed actors"""
        self.seeds: frozenset[tuple[str, str, str]] = frozenset()
        """(contract address, role hash, account) from the configuration's ``members``"""
        if cfg.allow_roles:
            at = {n: a.lower() for n, a in addresses.items()}
            at |= {n: a.lower() for n, (a, _abi) in (known or {}).items()}
            self.roles = frozenset((at[r.contract], role_hash(r.role)) for r in cfg.allow_roles)
            self.seeds = frozenset(
                (at[r.contract], role_hash(r.role), m.lower()) for r in cfg.allow_roles for m in r.members
            )
        self.holders: set[tuple[str, str, str]] = set(self.seeds)
        """(contract address, role hash, account) holding an allowed role now"""
        self.undo = UndoLog()
        self.deployment = deployment
        self.deployment_changes = 0
        """Changes passed as the deployment's set-up (watching from before the deployment)."""
        self.events: dict[str, str] = {}
        for action in cfg.actions:
            for name in GOVERNANCE_EVENTS[action]:
                self.events[name] = action
        if "parameters" in cfg.actions:
            listed = cfg.parameter_events
            if listed is None:  # found from the watched contracts' ABIs
                listed = parameter_events_of(known[n][1] for n in cfg.contracts if known and n in known)
            for name in listed:
                self.events[name] = "parameters"
        if "pause" in cfg.actions:
            for name in cfg.pause_events:
                self.events[name] = "pause"
        self.scheduled: frozenset[tuple[str, str]] | None = None
        """(contract, function) a timelock may schedule; None: scheduled calls judged by their actor"""
        self._targets: dict[str, str] = {}
        self._selectors: dict[tuple[str, bytes], FunctionAbi] = {}
        if cfg.scheduled_allow is not None:
            self.scheduled = frozenset((c.contract, c.function) for c in cfg.scheduled_allow)
            for name, (address, abi) in (known or {}).items():
                self._targets[address.lower()] = name
                for entry in abi:
                    if entry.get("type") == "function":
                        function = FunctionAbi.of(entry)
                        self._selectors[(address.lower(), function.selector)] = function
        self.make = FindingMaker(
            cfg.id, cfg.severity, cfg.title or "privileged change by an unexpected actor", cfg.labels
        )

    def reads(self) -> Sequence[ReadCall]:
        return ()

    def _allowed(self, actor: str) -> bool:
        return actor in self.allow or any((c, r, actor) in self.holders for c, r in self.roles)

    def _follow_roles(self, item: Any) -> None:
        """Add or remove a holder of an allowed role (``RoleGranted``/``RoleRevoked``)."""
        name = item.event.name
        if not self.roles or name not in ("RoleGranted", "RoleRevoked"):
            return
        key = (item.log.address.lower(), _hex32(item.args.get("role")))
        if key not in self.roles:
            return
        holder = (*key, str(item.args.get("account", "")).lower())
        if name == "RoleGranted":
            self.undo.add(self.holders, holder)
        else:
            self.undo.discard(self.holders, holder)

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        out: list[Finding] = []
        self.undo.begin(ctx.block.number)
        for item in ctx.logs:
            finding = self._judge(ctx, item)
            if finding is not None:
                out.append(finding)
            self._follow_roles(item)
        return out

    def rewind(self, to_block: int) -> None:
        """Forget role holders granted or revoked in blocks above ``to_block``."""
        self.undo.rewind(to_block)

    def snapshot(self) -> dict[str, Any]:
        return {
            "holders": sorted(list(h) for h in self.holders),
            "seeds": sorted(list(s) for s in self.seeds),
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a ``snapshot``; ``members`` added to the configuration since then are holders too."""
        saved = {(str(c), str(r), str(a)) for c, r, a in state.get("holders") or ()}
        seeded = {(str(c), str(r), str(a)) for c, r, a in state.get("seeds") or ()}
        self.holders = {h for h in saved if h[:2] in self.roles} | (set(self.seeds) - seeded)

    def _judge(self, ctx: BlockContext, item: Any) -> Finding | None:
        contract = self.contracts.get(item.log.address.lower())
        action = self.events.get(item.event.name) if contract else None
        if action is None:
            return None
        named = item.args.get("sender", item.args.get("by"))
        actor = str(named).lower() if isinstance(named, str) else item.tx.sender.lower()
        scheduled = self._scheduled(item.args) if item.event.name == "CallScheduled" else None
        if scheduled is not None:
            if scheduled["allowed"]:
                return None
        elif self._allowed(actor):
            return None
        if self.deployment is not None and self.deployment.set_up(item.tx, ctx.block.number):
            self.deployment_changes += 1
            return None
        evidence = {
            "action": action,
            "event": item.event.name,
            "contract": contract,
            "actor": actor,
            "tx_sender": item.tx.sender,
            "args": jsonable(dict(item.args)),
        }
        title = f"{action}: {contract}.{item.event.name} by {actor} (not allowlisted)"
        severity = self.make.severity
        if scheduled is not None:
            evidence["scheduled"] = {k: v for k, v in scheduled.items() if k != "allowed"}
            call = f"{scheduled['contract']}.{scheduled['function']}"
            title = f"{action}: {contract} scheduled {call} by {actor} (not in scheduled_allow)"
            if scheduled["loosening"]:
                severity = Severity(min(Severity.CRITICAL, severity + 1))
                title = f"{action}: {contract} scheduled loosening {call} by {actor} (not in scheduled_allow)"
        return self.make(
            ctx,
            tx=item.tx,
            log=item.log,
            evidence=evidence,
            severity=severity,
            title=title,
            labels={"action": action, "contract": str(contract)},
        )

    def _scheduled(self, args: Mapping[str, object]) -> dict[str, object] | None:
        """What a ``CallScheduled`` will call, named, and whether ``scheduled_allow`` lists it; None
        when the monitor judges scheduled calls by their actor."""
        if self.scheduled is None:
            return None
        target = str(args.get("target", "")).lower()
        raw = args.get("data", b"")
        data = bytes(raw) if isinstance(raw, bytes | bytearray) else b""
        contract = self._targets.get(target, target)
        function = self._selectors.get((target, data[:4]))
        name = function.name if function is not None else "0x" + data[:4].hex()
        allowed = (contract, name) in self.scheduled or (contract, "*") in self.scheduled
        out: dict[str, object] = {"contract": contract, "function": name, "data": "0x" + data.hex()}
        out["allowed"] = allowed
        if not allowed:
            value = args.get("value", 0)
            verdict = self._verdict(contract, target, function, data, value if isinstance(value, int) else 0)
            out.update(verdict)
        return out

    def _verdict(
        self, contract: str, address: str, function: FunctionAbi | None, data: bytes, value: int
    ) -> dict[str, object]:
        """What the responder's policy would say to this call from the guardian, offline."""
        decoded = function.decode_input(data) if function is not None else None
        if function is None or decoded is None:
            name = function.name if function is not None else "0x" + data[:4].hex()
            pattern = self.policy.loosening_pattern(name)
            reason = "the target's ABI has no such function" if function is None else "undecodable arguments"
            return {"policy": "unknown", "policy_reason": reason, "loosening": pattern is not None}
        values = tuple(
            to_checksum_address(v) if kind == "address" else v
            for kind, v in zip(function.input_types, decoded.values(), strict=True)
        )
        call = ContractCall(contract, address, function.name, function.signature, values, data, value)
        out: dict[str, object] = {"args": jsonable(dict(decoded))}
        try:
            rule = self.policy.check_call(call)
        except PolicyViolation as exc:
            loosening = exc.rule == "loosening" or exc.rule == "arguments"
            return out | {"policy": "refused", "policy_rule": exc.rule, "policy_reason": exc.detail,
                          "loosening": loosening}  # fmt: skip
        if rule.bounds:
            reads = ", ".join(c.current.text for c in rule.bounds if c.current is not None)
            reason = f"allowed if tighter than the value read on chain ({reads})"
            return out | {"policy": "needs chain", "policy_reason": reason, "loosening": False}
        return out | {"policy": "allowed", "loosening": False}

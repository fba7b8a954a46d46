"""Governance: privileged changes (roles, ownership, upgrades, timelock, pauses, Safes, parameters).

Recognised by the events of the standard patterns, whatever the protocol (``GOVERNANCE_EVENTS``:
OpenZeppelin AccessControl, Ownable/Ownable2Step and Synthetix-style Owned, ERC-1967 proxies,
TimelockController, Pausable, Safe owners/threshold/modules/guards), plus the monitor's own
``pause_events`` and ``parameter_events``. The actor is the event's own ``sender``/``by`` argument when
it has one (the contract's ``msg.sender``: the timelock when anyone executes a queued change), else the
transaction's sender. A change is a finding unless its actor is allowlisted (``allow`` addresses,
``allow_contracts`` names).

A TimelockController's ``CallScheduled`` can also be judged by what it will call: with
``scheduled_allow``, its ``target`` and ``data`` are decoded against the deployment's ABIs and a call
not in that list of (contract, function) is a finding whoever scheduled it, so a compromised proposer
(or Safe) is seen when it queues, a delay before the change executes.

The deployment's own set-up is expected, so watching from block 0 does not flag it (``SetUp``, from
the configuration's deployment): changes made in the transaction that created one of the manifest's
contracts (constructor grants, ``OwnershipTransferred(0, deployer)``), and changes in transactions
sent by the manifest's ``deployer`` up to its ``deployment_block`` (the set-up calls after the
constructors). The same key later is judged like anyone else. Without a ``deployment_block`` only
the constructors are expected. The detector keeps no state across blocks: nothing to rewind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from breakglass.config.deployment import Deployment
from breakglass.config.monitors import GovernanceMonitor
from breakglass.detect.abi import FunctionAbi
from breakglass.detect.base import BlockContext, FindingMaker, Interest, jsonable
from breakglass.detect.reads import Contracts, ReadCall
from breakglass.domain import Finding, Tx

__all__ = ["GOVERNANCE_EVENTS", "GovernanceDetector", "SetUp", "parameter_events_of"]

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
    ) -> None:
        """``addresses``: the monitored contract names -> addresses; ``allowed``: more allowed actors;
        ``deployment``: whose changes are the protocol's own set-up; ``known``: every contract of the
        deployment (name -> (address, ABI)), to name what a timelock schedules."""
        self.monitor_id = cfg.id
        self.interest = Interest(transactions=True)  # nothing to see in a block without one
        self.contracts = {a.lower(): n for n, a in addresses.items()}
        self.allow = {a.lower() for a in (*cfg.allow, *allowed)}
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
        self._selectors: dict[tuple[str, bytes], str] = {}
        if cfg.scheduled_allow is not None:
            self.scheduled = frozenset((c.contract, c.function) for c in cfg.scheduled_allow)
            for name, (address, abi) in (known or {}).items():
                self._targets[address.lower()] = name
                for entry in abi:
                    if entry.get("type") == "function":
                        function = FunctionAbi.of(entry)
                        self._selectors[(address.lower(), function.selector)] = function.name
        self.make = FindingMaker(
            cfg.id, cfg.severity, cfg.title or "privileged change by an unexpected actor", cfg.labels
        )

    def reads(self) -> Sequence[ReadCall]:
        return ()

    def on_block(self, ctx: BlockContext) -> list[Finding]:
        out: list[Finding] = []
        for item in ctx.logs:
            contract = self.contracts.get(item.log.address.lower())
            action = self.events.get(item.event.name) if contract else None
            if action is None:
                continue
            named = item.args.get("sender", item.args.get("by"))
            actor = str(named).lower() if isinstance(named, str) else item.tx.sender.lower()
            scheduled = self._scheduled(item.args) if item.event.name == "CallScheduled" else None
            if scheduled is not None:
                if scheduled["allowed"]:
                    continue
            elif actor in self.allow:
                continue
            if self.deployment is not None and self.deployment.set_up(item.tx, ctx.block.number):
                self.deployment_changes += 1
                continue
            evidence = {
                "action": action,
                "event": item.event.name,
                "contract": contract,
                "actor": actor,
                "tx_sender": item.tx.sender,
                "args": jsonable(dict(item.args)),
            }
            title = f"{action}: {contract}.{item.event.name} by {actor} (not allowlisted)"
            if scheduled is not None:
                evidence["scheduled"] = {k: v for k, v in scheduled.items() if k != "allowed"}
                call = f"{scheduled['contract']}.{scheduled['function']}"
                title = f"{action}: {contract} scheduled {call} by {actor} (not in scheduled_allow)"
            out.append(
                self.make(
                    ctx,
                    tx=item.tx,
                    log=item.log,
                    evidence=evidence,
                    title=title,
                    labels={"action": action, "contract": str(contract)},
                )
            )
        return out

    def _scheduled(self, args: Mapping[str, object]) -> dict[str, object] | None:
        """What a ``CallScheduled`` will call, named, and whether ``scheduled_allow`` lists it; None
        when the monitor judges scheduled calls by their actor."""
        if self.scheduled is None:
            return None
        target = str(args.get("target", "")).lower()
        raw = args.get("data", b"")
        data = bytes(raw) if isinstance(raw, bytes | bytearray) else b""
        contract = self._targets.get(target, target)
        function = self._selectors.get((target, data[:4]), "0x" + data[:4].hex())
        allowed = (contract, function) in self.scheduled or (contract, "*") in self.scheduled
        return {"contract": contract, "function": function, "data": "0x" + data.hex(), "allowed": allowed}

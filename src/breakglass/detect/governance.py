"""Governance: privileged changes (roles, ownership, upgrades, timelock, pauses, parameters).

Recognised by the standard OpenZeppelin event names (``RoleGranted``, ``OwnershipTransferred``,
``Upgraded``, ``CallScheduled``, ``Paused``...) plus the monitor's ``parameter_events``. The actor is
the event's own ``sender``/``by`` argument when it has one (the contract's ``msg.sender``: the timelock
when anyone executes a queued change), else the transaction's sender. A change is a finding unless
its actor is allowlisted (``allow`` addresses, ``allow_contracts`` names).

The deployment's own set-up is expected, so watching from block 0 does not flag it (``SetUp``, from
the configuration's deployment): changes made in the transaction that created one of the manifest's
contracts (constructor grants, ``OwnershipTransferred(0, deployer)``), and changes in transactions
sent by the manifest's ``deployer`` up to its ``deployment_block`` (the set-up calls after the
constructors). The same key later is judged like anyone else. Without a ``deployment_block`` only
the constructors are expected. The detector keeps no state across blocks: nothing to rewind.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from breakglass.config.deployment import Deployment
from breakglass.config.monitors import GovernanceMonitor
from breakglass.detect.base import BlockContext, FindingMaker, Interest, jsonable
from breakglass.detect.reads import ReadCall
from breakglass.domain import Finding, Tx

__all__ = ["GOVERNANCE_EVENTS", "GovernanceDetector", "SetUp"]

GOVERNANCE_EVENTS: Mapping[str, frozenset[str]] = {
    "roles": frozenset({"RoleGranted", "RoleRevoked", "RoleAdminChanged"}),
    "ownership": frozenset({"OwnershipTransferred", "OwnershipTransferStarted"}),
    "upgrades": frozenset({"Upgraded", "AdminChanged", "BeaconUpgraded"}),
    "timelock": frozenset({"CallScheduled", "MinDelayChange", "Cancelled"}),
    "pause": frozenset(
        {
            "Paused",
            "Unpaused",
            "VenuePaused",
            "VenueUnpaused",
            "MarketPaused",
            "MarketUnpaused",
            "AccountBlocked",
            "AccountUnblocked",
        }
    ),
    "parameters": frozenset(),
}


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
    ) -> None:
        """``addresses``: the monitored contract names -> addresses; ``allowed``: more allowed actors;
        ``deployment``: whose changes are the protocol's own set-up."""
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
            for name in cfg.parameter_events:
                self.events[name] = "parameters"
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
            if actor in self.allow:
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

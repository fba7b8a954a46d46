"""Governance: privileged changes (roles, ownership, upgrades, timelock, pauses, parameters).

Recognised by the standard OpenZeppelin event names (``RoleGranted``, ``OwnershipTransferred``,
``Upgraded``, ``CallScheduled``, ``Paused``...) plus the monitor's ``parameter_events``. The actor is
the event's own ``sender``/``by`` argument when it has one (the contract's ``msg.sender``: the timelock
when anyone executes a queued change), else the transaction's sender. A change is a finding unless
its actor is allowlisted (``allow`` addresses, ``allow_contracts`` names).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from breakglass.config.monitors import GovernanceMonitor
from breakglass.detect.base import BlockContext, FindingMaker
from breakglass.detect.filters import _jsonable
from breakglass.detect.reads import ReadCall
from breakglass.domain import Finding

__all__ = ["GOVERNANCE_EVENTS", "GovernanceDetector"]

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


class GovernanceDetector:
    def __init__(
        self, cfg: GovernanceMonitor, addresses: Mapping[str, str], allowed: Sequence[str] = ()
    ) -> None:
        """``addresses``: the monitored contract names -> addresses; ``allowed``: more allowed actors."""
        self.monitor_id = cfg.id
        self.contracts = {a.lower(): n for n, a in addresses.items()}
        self.allow = {a.lower() for a in (*cfg.allow, *allowed)}
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
            evidence = {
                "action": action,
                "event": item.event.name,
                "contract": contract,
                "actor": actor,
                "tx_sender": item.tx.sender,
                "args": _jsonable(dict(item.args)),
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

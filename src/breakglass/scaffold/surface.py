"""What a protocol's ABIs say about its emergency powers, its governance and its money.

Read from the ABIs alone (no chain): the functions that make things safer (pause, freeze, suspend, halt,
shut down, a ``setPaused(bool)``-style switch), the ones that undo them (unpause, unfreeze, resume), the
standard governance shapes (OpenZeppelin Pausable, AccessControl roles, Ownable and two-step owners,
ERC-1967 upgrades), the events that change a parameter, and which contracts are ERC-20 tokens.
Everything here is a guess from names and signatures: ``breakglass init`` writes it down, commented,
for a person to confirm.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ContractSurface", "EmergencyFunction", "ProtocolSurface", "discover"]

_TIGHTEN = re.compile(r"^_?(emergency)?_?(pause|freeze|suspend|halt|shutdown)", re.IGNORECASE)
_LOOSEN = re.compile(r"^(un)(pause|freeze|suspend|halt)|^resume|^restart", re.IGNORECASE)
_SWITCH = re.compile(
    r"^set.*(pause|paused|frozen|freeze|halt|halted|suspend|suspended|active)", re.IGNORECASE
)
"""``setPaused(bool)``, ``setPoolPause(bool)``, ``setReserveFreeze(address,bool)``: safer one way only."""
_RESUME_EVENT = re.compile(r"(unpaused|unfrozen|resumed|unsuspended|unhalted)$", re.IGNORECASE)
_GOVERNANCE_EVENTS = {
    "RoleGranted", "RoleRevoked", "RoleAdminChanged", "OwnershipTransferred", "OwnershipTransferStarted",
    "OwnerNominated", "OwnerChanged", "Upgraded", "AdminChanged", "BeaconUpgraded", "Paused", "Unpaused",
}  # fmt: skip
_PARAMETER_EVENT = re.compile(r"(Set|Updated|Changed|Update)$")
_DATA_EVENTS = {"AnswerUpdated", "NewRound", "CacheUpdated", "FundingRecomputed", "PriceUpdated"}
"""Named like parameter changes, but the protocol's everyday data (prices, caches, funding)."""


@dataclass(frozen=True, slots=True)
class EmergencyFunction:
    """A function that makes the protocol safer, with how its arguments must look to stay so."""

    contract: str
    name: str
    inputs: tuple[tuple[str, str], ...]
    """(name, ABI type) of each argument"""
    switch: bool = False
    """a ``set...(…, bool)`` switch: tightening only with ``true`` (false undoes it)"""

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(t for _, t in self.inputs)})"

    @property
    def breadth(self) -> int:
        """0 for a name that stops everything (``pause()``, ``suspendSystem``), 1 otherwise."""
        rest = _TIGHTEN.sub("", self.name).lower()
        return 0 if rest in ("", "all", "system", "protocol", "global", "venue", "everything") else 1

    @property
    def global_(self) -> bool:
        """Takes nothing that names a part of the protocol (no address, no id): the whole thing stops."""
        return all(t in ("bool", "uint256", "uint8") and not _names_a_part(n) for n, t in self.inputs)


def _names_a_part(arg: str) -> bool:
    return bool(re.search(r"market|asset|reserve|pool|token|key|id|account|vault|synth", arg, re.IGNORECASE))


@dataclass
class ContractSurface:
    name: str
    tightening: list[EmergencyFunction] = field(default_factory=list)
    loosening: list[str] = field(default_factory=list)
    pausable: bool = False
    """OpenZeppelin Pausable: ``paused()`` and the Paused/Unpaused events"""
    roles: list[str] = field(default_factory=list)
    """AccessControl role constants (``*_ROLE()`` views), when ``hasRole`` is there"""
    ownable: bool = False
    upgradeable: bool = False
    governance_events: list[str] = field(default_factory=list)
    resume_events: list[str] = field(default_factory=list)
    parameter_events: list[str] = field(default_factory=list)
    token: bool = False
    """ERC-20: balanceOf, totalSupply, transfer and the Transfer event"""


@dataclass
class ProtocolSurface:
    contracts: list[ContractSurface]

    @property
    def tokens(self) -> list[str]:
        return [c.name for c in self.contracts if c.token]

    @property
    def holders(self) -> list[str]:
        """Contracts that are not tokens: where the protocol's tokens sit."""
        return [c.name for c in self.contracts if not c.token]

    @property
    def tightening(self) -> list[EmergencyFunction]:
        return [f for c in self.contracts for f in c.tightening]

    def governed(self) -> list[ContractSurface]:
        return [c for c in self.contracts if c.governance_events or c.parameter_events]


def _inputs(entry: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((str(i.get("name", "")), str(i.get("type", ""))) for i in entry.get("inputs", []))


def discover(abis: Mapping[str, Sequence[Mapping[str, Any]]]) -> ProtocolSurface:
    """The surface of every named contract, from its ABI."""
    return ProtocolSurface([_contract(name, abi) for name, abi in abis.items()])


def _contract(name: str, abi: Sequence[Mapping[str, Any]]) -> ContractSurface:
    out = ContractSurface(name)
    functions = [e for e in abi if e.get("type") == "function"]
    events = {str(e["name"]) for e in abi if e.get("type") == "event"}
    names = {str(f["name"]) for f in functions}
    for f in functions:
        fname = str(f["name"])
        if f.get("stateMutability") in ("view", "pure"):
            if fname.endswith("_ROLE") and not f.get("inputs"):
                out.roles.append(fname)
            continue
        inputs = _inputs(f)
        if _LOOSEN.match(fname):
            out.loosening.append(fname)
        elif _SWITCH.match(fname) and inputs and inputs[-1][1] == "bool":
            out.tightening.append(EmergencyFunction(name, fname, inputs, switch=True))
        elif _TIGHTEN.match(fname) and all(t != "bool" for _, t in inputs):
            out.tightening.append(EmergencyFunction(name, fname, inputs))
    out.pausable = "paused" in names and {"Paused", "Unpaused"} <= events
    out.roles = out.roles if "hasRole" in names else []
    out.ownable = "owner" in names and bool(events & {"OwnershipTransferred", "OwnerChanged"})
    out.upgradeable = "Upgraded" in events
    out.governance_events = sorted(events & _GOVERNANCE_EVENTS)
    out.resume_events = sorted(e for e in events if _RESUME_EVENT.search(e))
    out.parameter_events = sorted(
        e for e in events if _PARAMETER_EVENT.search(e) and e not in _GOVERNANCE_EVENTS | _DATA_EVENTS
    )
    out.token = {"balanceOf", "totalSupply", "transfer"} <= names and "Transfer" in events
    return out
